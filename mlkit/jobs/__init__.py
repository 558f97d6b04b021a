"""Notebooks as reproducible jobs: papermill runs and sweeps, recorded in MLflow.

Attributes load lazily (lazy_loader): ``import mlkit.jobs`` imports neither papermill nor MLflow,
and ``mlkit.jobs.record`` (called inside job notebooks) stays light.

Examples
--------
>>> import mlkit
>>> result = mlkit.jobs.run("train.ipynb", {"lr": 0.1})             # doctest: +SKIP
>>> table = mlkit.jobs.sweep("train.ipynb", {"lr": [0.1, 0.01]})    # doctest: +SKIP
>>> mlkit.jobs.record(accuracy=0.93)   # inside the notebook
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
