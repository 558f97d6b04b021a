"""The public names of ``mlkit.jobs``, for editors and type checkers.

``mlkit/jobs/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

from ._history import list_runs
from ._params import (
    load_params_file,
    parse_grid,
    parse_value,
    validate_parameters,
)
from ._record import record, recorded
from ._run import EXIT_CODES, JobResult, run
from ._sweep import sweep

__all__ = [
    "record",
    "recorded",
    "run",
    "JobResult",
    "EXIT_CODES",
    "sweep",
    "list_runs",
    "validate_parameters",
    "parse_value",
    "parse_grid",
    "load_params_file",
]
