"""mlkit.train.xgboost on a real 2-worker LocalCluster, with a real MLflow store."""

from __future__ import annotations

import os
import signal
import time

import dask.dataframe as dd
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import xgboost.dask as xgb_dask

import mlkit
from mlkit.exceptions import ConfigError, DataError, TrainingError


def _frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 6)), columns=[f"f{i}" for i in range(6)])
    logit = 1.5 * df.f0 - df.f1 + 0.5 * df.f2 * df.f3
    df["target"] = (logit + rng.normal(scale=0.5, size=rows) > 0).astype("int64")
    return df


def _runs() -> list:
    mlkit.track.configure()
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


class _FailAt(xgb.callback.TrainingCallback):
    """Raises on every rank once ``round`` trees exist (a crash mid-training)."""

    def __init__(self, round: int) -> None:
        self.round = round

    def after_iteration(self, model, epoch, evals_log):
        if model.num_boosted_rounds() == self.round:
            raise RuntimeError(f"simulated crash at round {self.round}")
        return False


class _KillRankAt(xgb.callback.TrainingCallback):
    """Rank 1 kills its own worker process (SIGKILL) at a given round: a lost worker."""

    def __init__(self, round: int) -> None:
        self.round = round

    def after_iteration(self, model, epoch, evals_log):
        from xgboost import collective

        if model.num_boosted_rounds() == self.round and collective.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.05)
        return False


class _InterruptClientAt(xgb.callback.TrainingCallback):
    """Rank 0 sends SIGINT to the notebook process (what the kernel's stop button does)."""

    def __init__(self, pid: int, round: int) -> None:
        self.pid, self.round = pid, round

    def after_iteration(self, model, epoch, evals_log):
        from xgboost import collective

        if model.num_boosted_rounds() == self.round and collective.get_rank() == 0:
            os.kill(self.pid, signal.SIGINT)
        time.sleep(0.05)
        return False


def test_same_model_as_xgboost_dask_directly(client, capfd):
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=2).persist()
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 4,
              "eta": 0.3, "seed": 7}

    res = mlkit.train.xgboost(ddf, "target", params=params, rounds=15)

    X, y = ddf.drop(columns=["target"]), ddf["target"]
    raw = xgb_dask.train(
        client, {**params, "tree_method": "hist", "device": "cpu"},
        xgb_dask.DaskDMatrix(client, X, y), num_boost_round=15,
        evals=[(xgb_dask.DaskDMatrix(client, X, y), "train")],
    )
    features = df.drop(columns=["target"])
    ours = res.booster.predict(xgb.DMatrix(features))
    theirs = raw["booster"].predict(xgb.DMatrix(features))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        res.history["train-logloss"].to_numpy(), raw["history"]["train"]["logloss"], rtol=1e-6
    )
    assert res.booster.num_boosted_rounds() == 15
    assert res.params["device"] == "cpu" and res.params["tree_method"] == "hist"
    assert res.best_iteration == 14
    assert list(res.feature_importance.index[:2]) == ["f0", "f1"]  # the informative features

    # per-round metrics reached the MLflow run, which ended FINISHED
    run = mlflow.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["rounds"] == "15"
    hist = mlflow.MlflowClient().get_metric_history(res.run_id, "train-logloss")
    assert sorted(m.step for m in hist) == list(range(1, 16))
    # the text progress bar was drawn (no kernel here)
    assert "15/15" in capfd.readouterr().err


def test_breast_cancer_auc_and_pyfunc_on_raw_pandas(cluster):
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import roc_auc_score

    data = load_breast_cancer(as_frame=True).frame
    data.columns = [c.replace(" ", "_") for c in data.columns]
    # a raw text column, so the bundled preprocessing has real work to do at serving time
    data.insert(0, "clinic", np.where(np.arange(len(data)) % 3 == 0, "north", "south"))
    train = data.sample(frac=0.7, random_state=0)
    valid = data.drop(train.index)
    prep = mlkit.data.make_preprocessor(train, exclude=["target"])  # not fitted yet

    res = mlkit.train.xgboost(
        dd.from_pandas(train, npartitions=2), "target", valid=dd.from_pandas(valid, npartitions=2),
        params={"objective": "binary:logistic", "eval_metric": "auc", "eta": 0.3},
        rounds=200, early_stopping=10, preprocess=prep, name="cancer", log_data=True,
    )
    raw_valid = valid.drop(columns=["target"])
    auc = roc_auc_score(valid["target"], res.predict(raw_valid))
    assert auc >= 0.95
    assert res.booster.num_boosted_rounds() < 200  # early stopping stopped it
    assert res.best_iteration == int(np.argmax(res.history["valid-auc"].to_numpy()))

    uri = res.log_model()
    model = mlflow.pyfunc.load_model(uri)
    assert model.metadata.get_input_schema().input_names() == list(raw_valid.columns)
    served = np.asarray(model.predict(raw_valid))
    np.testing.assert_allclose(served, res.predict(raw_valid), rtol=1e-6)
    # column order in the request does not matter; the raw text column is encoded inside
    shuffled = raw_valid[list(reversed(raw_valid.columns))].head(7)
    np.testing.assert_allclose(np.asarray(model.predict(shuffled)), served[:7], rtol=1e-6)
    run = mlflow.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    assert sorted(d.dataset.name for d in run.inputs.dataset_inputs) == ["train", "valid"]


def test_checkpoint_resume_equals_uninterrupted(cluster):
    ddf = dd.from_pandas(_frame(seed=1), npartitions=2).persist()
    params = {"objective": "binary:logistic", "max_depth": 3, "seed": 0}

    full = mlkit.train.xgboost(ddf, "target", params=params, rounds=20, progress=False,
                               name="full")

    with pytest.raises(TrainingError, match="resume=True") as caught:
        mlkit.train.xgboost(ddf, "target", params=params, rounds=20, checkpoint_every=5,
                            name="crashy", callbacks=[_FailAt(12)], progress=False)
    failed = [r for r in _runs() if r.info.run_name == "crashy"]
    assert [r.info.status for r in failed] == ["FAILED"]
    folder = mlkit.config.home("checkpoints", "xgboost", "crashy")
    # structured fields: no worker was lost; rounds up to the failing one were reported
    err = caught.value
    assert (err.lost_workers, err.ranks) == ([], [])
    assert err.step is not None and 10 <= err.step <= 12
    assert err.checkpoint_dir == str(folder)
    assert sorted(p.name for p in folder.glob("*.ubj")) == ["round-000005.ubj", "round-000010.ubj"]

    resumed = mlkit.train.xgboost(ddf, "target", params=params, rounds=20, checkpoint_every=5,
                                  name="crashy", resume=True, progress=False)
    assert resumed.booster.num_boosted_rounds() == 20
    X = xgb.DMatrix(_frame(seed=1).drop(columns=["target"]))
    np.testing.assert_allclose(resumed.booster.predict(X), full.booster.predict(X), rtol=1e-6)
    # the history covers all 20 rounds, the first 10 from the checkpoint
    np.testing.assert_allclose(resumed.history.to_numpy(), full.history.to_numpy(), rtol=1e-6)


def test_killed_worker_gives_training_error_within_bound(fresh_cluster):
    ddf = dd.from_pandas(_frame(rows=4000), npartitions=2).persist()
    workers = sorted(fresh_cluster.client.scheduler_info(n_workers=-1)["workers"])
    bound = 30
    start = time.monotonic()
    with pytest.raises(TrainingError, match="xgboost training failed") as caught:
        mlkit.train.xgboost(ddf, "target", params={"objective": "binary:logistic"},
                            rounds=500, timeout=bound, callbacks=[_KillRankAt(5)],
                            progress=False, name="killed")
    if caught.value.lost_workers:  # the kill was seen as a lost worker (the usual case)
        assert set(caught.value.lost_workers) <= set(workers)
        assert len(caught.value.ranks) == len(caught.value.lost_workers)
    assert caught.value.checkpoint_dir is None
    # 500 rounds would take 25 s of sleeps alone; the failure comes within the bound
    assert time.monotonic() - start < bound + 30
    assert [r.info.status for r in _runs() if r.info.run_name == "killed"] == ["FAILED"]
    # the nanny restarts the worker and the cluster keeps working
    fresh_cluster.client.wait_for_workers(2, timeout=60)
    assert fresh_cluster.client.submit(sum, [1, 2], pure=False).result(timeout=60) == 3


def test_interrupt_ends_run_killed_and_keeps_cluster_usable(client):
    ddf = dd.from_pandas(_frame(), npartitions=2).persist()
    with pytest.raises(KeyboardInterrupt):
        mlkit.train.xgboost(ddf, "target", params={"objective": "binary:logistic"},
                            rounds=400, callbacks=[_InterruptClientAt(os.getpid(), 3)],
                            progress=False, name="interrupted")
    (run,) = [r for r in _runs() if r.info.run_name == "interrupted"]
    assert run.info.status == "KILLED"
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(run.info.run_id,
                                                                       "train-logloss")]
    assert steps and max(steps) < 400  # the ranks stopped together, early
    # both workers are free again: a new training runs to the end
    res = mlkit.train.xgboost(ddf, "target", rounds=3, progress=False, track=False)
    assert res.booster.num_boosted_rounds() == 3 and res.run_id is None


def test_bad_input_fails_before_anything_is_written(cluster, mlkit_home):
    df = _frame(rows=100)
    with pytest.raises(DataError, match="'label' is not in train"):
        mlkit.train.xgboost(df, "label")
    with pytest.raises(ConfigError, match="early_stopping needs valid="):
        mlkit.train.xgboost(df, "target", early_stopping=5)
    with pytest.raises(ConfigError, match="rounds must be a positive integer"):
        mlkit.train.xgboost(df, "target", rounds=0)
    with pytest.raises(DataError, match="must be a dask or pandas DataFrame"):
        mlkit.train.xgboost(df.to_numpy(), "target")
    with pytest.raises(ConfigError, match="not a transformer"):
        mlkit.train.xgboost(df, "target", preprocess="scale")
    text = df.assign(city="x")
    with pytest.raises(DataError, match=r"\['city'\] are not numeric"):
        mlkit.train.xgboost(text, "target")
    with pytest.raises(DataError, match="feature columns"):
        mlkit.train.xgboost(df, "target", valid=df.drop(columns=["f5"]))
    assert not (mlkit_home / "mlflow").exists()  # no MLflow store, let alone a RUNNING run


def test_trains_straight_from_a_lazy_parquet_read(cluster, tmp_path):
    # Regression: column projection used to give X and y different partition counts.
    path = str(tmp_path / "data")
    mlkit.data.synthetic(path, rows=20_000, features=8, partitions=4, seed=0, progress=False)
    ddf = mlkit.data.read(path)
    res = mlkit.train.xgboost(
        ddf, "target", params={"objective": "binary:logistic"}, rounds=5,
        progress=False, track=False,
    )
    assert res.booster.num_boosted_rounds() == 5
    assert res.predict(ddf.head(50).drop(columns="target")).shape == (50,)
