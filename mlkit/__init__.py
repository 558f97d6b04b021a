"""mlkit: scale machine learning from a notebook.

``import mlkit`` is cheap: submodules (and the engines behind them: dask, torch, xgboost, optuna,
mlflow, papermill, ipywidgets) load on first attribute access.

Examples
--------
>>> import mlkit
>>> mlkit.__version__
'0.1.0'
>>> c = mlkit.cluster.up(workers=2)   # doctest: +SKIP

In a notebook::

    %load_ext mlkit
    %mlscale up --workers 2
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = (
    "cluster",
    "config",
    "data",
    "exceptions",
    "jobs",
    "monitor",
    "scaling",
    "serve",
    "track",
    "train",
    "tune",
    "widgets",
)

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension", *_SUBMODULES]

if TYPE_CHECKING:  # pragma: no cover - editors and type checkers see every lazy submodule
    from mlkit import (  # noqa: F401
        cluster,
        config,
        data,
        exceptions,
        jobs,
        monitor,
        scaling,
        serve,
        track,
        train,
        tune,
        widgets,
    )


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"mlkit.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'mlkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext mlkit``: registers the ``%mlscale`` line and cell magic."""
    from mlkit._interrupt import install
    from mlkit.magics import load_ipython_extension as _load
    from mlkit.track._defaults import quiet_artifact_bars

    _load(ipython)
    install(ipython)  # an interrupted cell does not leave its cluster work running
    quiet_artifact_bars()  # MLflow's tqdm widgets would not survive saving the notebook


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext mlkit``."""
    from mlkit._interrupt import uninstall
    from mlkit.magics import unload_ipython_extension as _unload

    _unload(ipython)
    uninstall(ipython)
