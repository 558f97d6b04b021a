"""End to end through the real scoring server: serve with log_predictions=True, send traffic
over HTTP, read the server's own prediction log, and find the drift in it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlkit
from mlkit.cli import cli
from tests._wait import wait_for

pytestmark = pytest.mark.slow


def _frame(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["f0", "f1", "f2"])
    X["f1"] += shift
    return X


def test_live_traffic_from_a_served_model_is_checked_for_drift(cluster):
    import mlflow
    import xgboost as xgb
    from mlflow.models import infer_signature

    train = _frame(0, 3000)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                        xgb.DMatrix(train, (train.f0 + train.f1 > 0).astype(int)), 10)
    with mlkit.track.run("fit"):
        info = mlflow.xgboost.log_model(
            booster, name="model", pip_requirements=["xgboost"],
            signature=infer_signature(train, booster.predict(xgb.DMatrix(train))),
        )
        mlkit.monitor.reference_profile(train).log()  # the reference, next to the model

    srv = mlkit.serve.start(info.model_uri, name="scorer", log_predictions=True,
                            flush_every=1, flush_seconds=0.5)
    try:
        sent, answers = [], []
        for i in range(4):  # healthy requests, then requests whose f1 has moved
            batch = _frame(10 + i, 400, shift=1.0 if i >= 2 else 0.0)
            sent.append(batch)
            answers.append(srv.predict(batch))

        def logged_rows() -> int:
            files = list(mlkit.monitor.prediction_log_dir("scorer").glob("part-*.parquet"))
            return sum(len(pd.read_parquet(f)) for f in files)

        wait_for(lambda: logged_rows() >= 1600, what="1600 rows in the prediction log")
    finally:
        srv.stop()

    live = mlkit.monitor.predictions("scorer", since="1h").compute()
    assert len(live) == 1600
    assert list(live.columns) == ["f0", "f1", "f2", "prediction", "_mlkit_time",
                                  "_mlkit_request_id"]
    assert live["_mlkit_request_id"].nunique() == 4
    expected = pd.concat(sent, ignore_index=True)
    assert live.groupby("_mlkit_request_id").size().tolist() == [400] * 4
    np.testing.assert_allclose(np.sort(live["f1"].to_numpy()), np.sort(expected["f1"].to_numpy()))
    np.testing.assert_allclose(np.sort(live["prediction"].to_numpy()),
                               np.sort(pd.concat(answers).to_numpy()), rtol=1e-6)

    run_id = mlflow.search_runs(search_all_experiments=True).iloc[0]["run_id"]
    report = mlkit.monitor.drift(info.model_uri, mlkit.monitor.predictions("scorer", since="1h"))
    assert report.drifted_features == ["f1"]
    assert report.skipped == []
    assert mlkit.monitor.load_profile(f"runs:/{run_id}").names == ["f0", "f1", "f2"]

    out = CliRunner().invoke(cli, ["monitor", "scorer", "--reference", info.model_uri])
    assert out.exit_code == 1, out.output
    assert out.output.startswith("DRIFT: 1 of 3 features drifted (f1)")
