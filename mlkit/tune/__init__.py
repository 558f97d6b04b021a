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

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_tune": ["tune", "open_study"],
        "_study": ["Study"],
        "_tracking": ["best_model", "best_model_uri", "register_best"],
        "_xgboost": ["XGBoostPruningCallback"],
        "_report": ["report"],
        "_storage": ["default_journal_path"],
        "_progress": ["TuneProgress"],
    },
)
