"""The public names of ``mlkit.monitor``, for editors and type checkers.

``mlkit/monitor/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

from ._drift import (
    DEFAULT_THRESHOLDS,
    FeatureDrift,
    drift,
)
from ._explain import Explanation, explain
from ._logs import (
    prediction_log_dir,
    predictions,
    reference_for,
    register_reference,
)
from ._profile import (
    ReferenceProfile,
    load_profile,
    reference_profile,
)
from ._report import DriftReport
from ._watch import Watcher, check, watch

__all__ = [
    "drift",
    "FeatureDrift",
    "DEFAULT_THRESHOLDS",
    "DriftReport",
    "ReferenceProfile",
    "reference_profile",
    "load_profile",
    "predictions",
    "prediction_log_dir",
    "register_reference",
    "reference_for",
    "watch",
    "Watcher",
    "check",
    "explain",
    "Explanation",
]
