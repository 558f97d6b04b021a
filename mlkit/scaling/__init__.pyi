"""The public names of ``mlkit.scaling``, for editors and type checkers.

``mlkit/scaling/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

from ._report import ScalingReport, report
from ._sizes import Sizes
from ._table import with_ideal
from ._workers import parse_workers

__all__ = [
    "report",
    "ScalingReport",
    "Sizes",
    "parse_workers",
    "with_ideal",
]
