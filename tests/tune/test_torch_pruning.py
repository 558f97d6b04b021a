"""Pruning a multi-rank mlkit.train.torch job from the objective (mlkit.tune.report with ctx)."""

from __future__ import annotations

import optuna
import pytest

import mlkit

LOSSES = [0.1, 0.2, 0.3, 0.9]  # trial 3 is worse than the median of the others at every epoch


@pytest.mark.slow
def test_torch_job_is_pruned_on_every_rank_at_the_same_epoch(cluster):
    def objective(trial):
        loss = LOSSES[trial.number]

        def train_fn(ctx):
            for epoch in range(ctx.epochs):
                value = ctx.mean(loss)  # the same on every rank
                ctx.report(epoch=epoch, loss=value)
                if mlkit.tune.report(trial, value, epoch, ctx):
                    raise optuna.TrialPruned()
            return ctx.world_size

        result = mlkit.train.torch(train_fn, epochs=4, progress=False, track=False)
        trial.set_user_attr("ranks", result.values)
        return float(result.history["loss"].iloc[-1])

    study = mlkit.tune.tune(
        objective,
        4,
        study_name="torch-prune",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        on="client",
        progress=False,
        track=False,
    )
    by_number = {t.number: t for t in study.trials}
    assert [by_number[i].state.name for i in range(4)] == ["COMPLETE"] * 3 + ["PRUNED"]
    assert by_number[0].user_attrs["ranks"] == [2, 2]  # a real two-rank job
    for i in range(3):  # rank 0 alone reported: one value per epoch
        assert by_number[i].intermediate_values == {e: LOSSES[i] for e in range(4)}
    assert by_number[3].intermediate_values == {0: 0.9, 1: 0.9}


def test_report_without_a_torch_job(cluster):
    def objective(trial):
        for step in range(3):
            if mlkit.tune.report(trial, [0.1, 0.2, 0.3, 0.9][trial.number], step):
                raise optuna.TrialPruned()
        return 0.0

    study = mlkit.tune.tune(
        objective,
        4,
        study_name="plain-report",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        concurrency=1,
        progress=False,
        track=False,
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["PRUNED"]
