"""Hyperparameter tuning across the cluster: Optuna studies whose trials run on every worker.

Attributes load lazily (lazy_loader), so importing this package imports neither Optuna nor Dask.

Examples
--------
>>> import mlkit
>>> mlkit.cluster.up(workers=2)                              # doctest: +SKIP
>>> def objective(trial):
...     x = trial.suggest_float("x", -10, 10)
...     return (x - 2) ** 2
>>> study = mlkit.tune.tune(objective, n_trials=40)          # doctest: +SKIP
>>> study.best_params                                        # doctest: +SKIP
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
