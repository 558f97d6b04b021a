"""Prune xgboost trainings from their evaluation metric, also when they train on many workers.

Use it in ``callbacks=`` of ``mlkit.train.xgboost``, ``xgboost.dask.train`` or ``xgboost.train``.
With xgboost.dask every worker runs a copy of the callback; the evaluation metrics are the same
on all of them (xgboost all-reduces them), but if each copy asked the pruner on its own they
could decide differently and the workers left training would wait forever in the next
all-reduce. So rank 0 reports and decides, the decision is broadcast, and all ranks stop at the
same iteration. (optuna-integration's ``XGBoostPruningCallback`` is the single-process version.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.exceptions import TuneError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import optuna
    import xgboost
    import xgboost.collective as collective
else:
    optuna = require("optuna")
    xgboost = require("xgboost")
    collective = require("xgboost.collective")

__all__ = ["XGBoostPruningCallback"]


class XGBoostPruningCallback(xgboost.callback.TrainingCallback):
    """Report an evaluation metric to the trial after each boosting round and prune.

    Parameters
    ----------
    trial : optuna.Trial
        The trial the objective received.
    observation_key : str
        ``"<eval name>-<metric>"``, e.g. ``"validation-logloss"`` for
        ``evals=[(dvalid, "validation")]`` and ``eval_metric="logloss"``.

    Examples
    --------
    >>> def objective(trial):                                              # doctest: +SKIP
    ...     params = {"eta": trial.suggest_float("eta", 0.01, 0.3, log=True),
    ...               "objective": "binary:logistic", "eval_metric": "logloss"}
    ...     cb = mlkit.tune.XGBoostPruningCallback(trial, "validation-logloss")
    ...     out = xgboost.dask.train(client, params, dtrain, 100,
    ...                              evals=[(dvalid, "validation")], callbacks=[cb])
    ...     return out["history"]["validation"]["logloss"][-1]
    >>> mlkit.tune.tune(objective, 20, on="client")                        # doctest: +SKIP
    """

    def __init__(self, trial: optuna.Trial, observation_key: str) -> None:
        if not isinstance(observation_key, str) or "-" not in observation_key:
            raise TuneError(
                f"observation_key must look like '<eval name>-<metric>' (e.g. "
                f"'validation-logloss'), but got {observation_key!r}"
            )
        super().__init__()
        self.trial = trial
        self.observation_key = observation_key

    def _score(self, evals_log: dict[str, Any]) -> float:
        flat = {}
        for data, metrics in evals_log.items():
            for metric, scores in metrics.items():
                last = scores[-1]
                flat[f"{data}-{metric}"] = (
                    last[0] if isinstance(last, tuple) else last
                )  # cv: (mean, std)
        if self.observation_key not in flat:
            raise TuneError(
                f"xgboost reports no {self.observation_key!r}; it reports {sorted(flat)}: pass "
                "evals=[(data, NAME)] and an eval_metric so that NAME-METRIC exists"
            )
        return float(flat[self.observation_key])

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        distributed = collective.is_distributed() and collective.get_world_size() > 1
        rank = collective.get_rank() if distributed else 0
        prune = False
        problem: BaseException | None = None
        if rank == 0:
            try:
                self.trial.report(self._score(evals_log), step=epoch)
                prune = bool(self.trial.should_prune())
            except Exception as exc:  # stop every rank together, then raise it on rank 0
                problem, prune = exc, True
        if distributed:
            prune = bool(collective.broadcast(prune, 0))
        if problem is not None:
            raise problem
        if prune:
            raise optuna.TrialPruned(f"pruned at iteration {epoch} ({self.observation_key})")
        return False
