"""Report an intermediate value and get the pruning decision, also from a multi-rank torch job.

In ``mlkit.train.torch`` every rank runs ``train_fn(ctx)``. If each rank asked the pruner on its
own, ranks could decide differently and the ones that carry on would wait forever in their next
collective. :func:`report` lets rank 0 report and decide, and shares the decision with every rank
through the job's own collective (``ctx.mean``), so all ranks stop at the same step.
"""

from __future__ import annotations

from typing import Any

__all__ = ["report"]


def report(trial: Any, value: float, step: int, ctx: Any = None) -> bool:
    """``trial.report(value, step)``, then whether the trial should be pruned.

    Parameters
    ----------
    trial : optuna.Trial
        The trial the objective received (captured by ``train_fn``; it pickles).
    value : float
        The intermediate objective value, the same on every rank (e.g. ``ctx.mean(loss)``).
    step : int
        The step (epoch) of ``value``.
    ctx : mlkit.train.TrainContext, optional
        In a torch job: call on every rank; rank 0 reports and all ranks get its decision.

    Returns
    -------
    bool
        True when the trial should stop: raise ``optuna.TrialPruned()`` on every rank.

    Examples
    --------
    >>> def objective(trial):                                            # doctest: +SKIP
    ...     lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    ...     def train_fn(ctx):
    ...         for epoch in range(ctx.epochs):
    ...             loss = ctx.mean(train_one_epoch(ctx, lr))
    ...             ctx.report(epoch=epoch, loss=loss)
    ...             if mlkit.tune.report(trial, loss, epoch, ctx):
    ...                 raise optuna.TrialPruned()
    ...     res = mlkit.train.torch(train_fn, data=ddf, epochs=10)
    ...     return res.history["loss"].iloc[-1]
    >>> mlkit.tune.tune(objective, 20, on="client")                     # doctest: +SKIP
    """
    if ctx is None or int(getattr(ctx, "world_size", 1)) <= 1:
        trial.report(value, step)
        return bool(trial.should_prune())
    flag = 0.0
    problem: BaseException | None = None
    if ctx.rank == 0:
        try:
            trial.report(value, step)
            flag = float(trial.should_prune())
        except Exception as exc:  # stop every rank together, then raise it on rank 0
            problem, flag = exc, 1.0
    decided = ctx.mean(flag) > 0  # rank 0's flag over world_size: > 0 exactly when it said so
    if problem is not None:
        raise problem
    return decided
