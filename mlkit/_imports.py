"""Optional-dependency helper, after optuna's ``_imports``.

Every engine mlkit drives is an optional extra. :func:`require` imports one on first use and, if
it is missing, raises a single :class:`~mlkit.exceptions.MissingDependencyError` naming the exact
``pip install`` line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mlkit.exceptions import MissingDependencyError

# module -> the mlkit extra that installs it
_EXTRA_FOR = {
    "dask": "dask",
    "distributed": "dask",
    "cloudpickle": "dask",
    "numpy": "dask",
    "pandas": "dask",
    "pyarrow": "dask",
    "tqdm": "dask",
    "dask_cuda": "gpu",
    "dask_cudf": "gpu",
    "xgboost": "xgboost",
    "torch": "torch",
    "optuna": "optuna",
    "optuna_integration": "optuna",
    "mlflow": "mlflow",
    "papermill": "papermill",
    "jupyter_client": "papermill",
    "nbformat": "papermill",
    "yaml": "papermill",
    "ipywidgets": "widgets",
    "fsspec": "data",
    "s3fs": "data",
    "pandera": "data",
    "scipy": "data",
    "sklearn": "data",
    "prometheus_client": "serve",
    "psutil": "serve",
    "uvicorn": "serve",
    "httpx": "serve",
    "httptools": "serve",
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error that says which extra installs it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"xgboost.dask"``.
    extra : str, optional
        The mlkit extra to recommend; looked up from the top-level package when omitted.

    Examples
    --------
    >>> from mlkit._imports import require
    >>> json = require("json")
    >>> json.dumps([1])
    '[1]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            # The package is there but one of *its* imports failed: show that, not a pip hint.
            raise
        extra = extra or _EXTRA_FOR.get(top, "all")
        raise MissingDependencyError(
            f"{module!r} is not installed; install it with: pip install \"mlkit[{extra}]\""
        ) from exc


def available(module: str) -> bool:
    """True if ``module`` can be found, without importing it.

    Examples
    --------
    >>> available("json"), available("surely_not_a_module")
    (True, False)
    """
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False
