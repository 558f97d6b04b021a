"""The public names of ``mlkit.tune``, for editors and type checkers.

``mlkit/tune/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

from ._progress import TuneProgress
from ._report import report
from ._storage import default_journal_path
from ._study import Study
from ._tracking import (
    best_model,
    best_model_uri,
    register_best,
)
from ._tune import open_study, tune
from ._xgboost import XGBoostPruningCallback

__all__ = [
    "tune",
    "open_study",
    "Study",
    "best_model",
    "best_model_uri",
    "register_best",
    "XGBoostPruningCallback",
    "report",
    "default_journal_path",
    "TuneProgress",
]
