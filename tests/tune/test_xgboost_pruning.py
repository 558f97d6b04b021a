"""XGBoostPruningCallback: pruning xgboost trainings, also xgboost.dask ones on both workers."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import TuneError

ETAS = [0.5, 0.4, 1e-4]  # trial 2 learns nothing: its logloss stays above the others' median
ROUNDS = 12


def _pruner():
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)


def _frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 4))
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    df["target"] = (X[:, 0] + X[:, 1] > 1).astype(int)
    return df


def _check(study):
    by_number = {t.number: t for t in study.trials}
    assert [by_number[i].state.name for i in range(3)] == ["COMPLETE", "COMPLETE", "PRUNED"]
    for i in (0, 1):  # one report per round: only rank 0 reports
        assert sorted(by_number[i].intermediate_values) == list(range(ROUNDS))
    assert sorted(by_number[2].intermediate_values) == [0, 1, 2]  # pruned right after warm-up


@pytest.mark.slow
def test_prunes_xgboost_dask_training_on_two_workers(cluster):
    import dask.array as da
    import xgboost as xgb
    import xgboost.dask  # noqa: F401

    client = cluster.client
    X = da.random.RandomState(0).random((2000, 4), chunks=(250, 4))
    y = (X[:, 0] + X[:, 1] > 1).astype("int32")
    X, y = client.persist([X, y])
    from distributed import wait

    wait([X, y])
    holders = {w for ws in client.who_has(X).values() for w in ws}
    assert len(holders) == 2  # the training below runs on both workers (world size 2)

    def objective(trial):
        from distributed import get_client

        eta = ETAS[trial.number]
        trial.set_user_attr("eta", eta)
        dtrain = xgb.dask.DaskDMatrix(get_client(), X, y)
        out = xgb.dask.train(
            get_client(),
            {"eta": eta, "objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1},
            dtrain,
            num_boost_round=ROUNDS,
            evals=[(dtrain, "validation")],
            callbacks=[mlkit.tune.XGBoostPruningCallback(trial, "validation-logloss")],
        )
        return out["history"]["validation"]["logloss"][-1]

    study = mlkit.tune.tune(
        objective,
        3,
        study_name="xgb-dask",
        pruner=_pruner(),
        on="client",
        progress=False,
        track=False,
    )
    _check(study)


@pytest.mark.slow
def test_prunes_mlkit_train_xgboost(cluster):
    train, valid = _frame(600, 0), _frame(300, 1)

    def objective(trial):
        eta = ETAS[trial.number]
        result = mlkit.train.xgboost(
            train,
            "target",
            valid=valid,
            params={"eta": eta, "objective": "binary:logistic", "eval_metric": "logloss"},
            rounds=ROUNDS,
            callbacks=[mlkit.tune.XGBoostPruningCallback(trial, "valid-logloss")],
            progress=False,
            track=False,
        )
        return float(result.history["valid-logloss"].iloc[-1])

    study = mlkit.tune.tune(
        objective,
        3,
        study_name="xgb-mlkit",
        pruner=_pruner(),
        on="client",
        progress=False,
        track=False,
    )
    _check(study)


def test_single_process_xgboost_in_worker_trials(cluster):
    def objective(trial):
        import xgboost as xgb

        df = _frame(400, 0)
        dm = xgb.DMatrix(df.drop(columns="target"), label=df["target"])
        eta = ETAS[trial.number]
        booster = xgb.train(
            {"eta": eta, "objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1},
            dm,
            num_boost_round=ROUNDS,
            evals=[(dm, "train")],
            verbose_eval=False,
            callbacks=[mlkit.tune.XGBoostPruningCallback(trial, "train-logloss")],
        )
        return float(booster.eval(dm).split(":")[1])

    study = mlkit.tune.tune(
        objective,
        3,
        study_name="xgb-local",
        pruner=_pruner(),
        concurrency=1,
        progress=False,
        track=False,
    )
    _check(study)


def test_unknown_observation_key_names_the_available_ones(cluster):
    def objective(trial):
        import xgboost as xgb

        df = _frame(100, 0)
        dm = xgb.DMatrix(df.drop(columns="target"), label=df["target"])
        xgb.train(
            {"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1},
            dm,
            num_boost_round=2,
            evals=[(dm, "train")],
            verbose_eval=False,
            callbacks=[mlkit.tune.XGBoostPruningCallback(trial, "valid-auc")],
        )
        return 0.0

    study = mlkit.tune.tune(objective, 1, study_name="xgb-key", progress=False, track=False)
    reason = study.trials[0].system_attrs["fail_reason"]
    assert "no 'valid-auc'" in reason and "['train-logloss']" in reason
    with pytest.raises(TuneError, match="observation_key must look like"):
        mlkit.tune.XGBoostPruningCallback(study.trials[0], "logloss")
