"""drift(): correctness at default thresholds, on pandas and on the cluster; profiles; errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlkit
from mlkit.exceptions import ConfigError, DataError, TrackingError
from tests._stop import press_stop
from tests._wait import wait_for, wait_until_false


def _same_distribution(seed: int, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "normal": rng.normal(0, 1, n),
        "lognormal": rng.lognormal(0, 1, n),
        "uniform": rng.uniform(-3, 3, n),
        "exponential": rng.exponential(1, n),
        "student": rng.standard_t(3, n),
        "count": rng.poisson(3, n),           # ties
        "colour": rng.choice(["red", "green", "blue", "grey", "pink"], n,
                             p=[0.4, 0.3, 0.15, 0.1, 0.05]),
        "flag": rng.random(n) < 0.3,          # boolean -> categorical
    })


def test_at_most_5_percent_false_flags_over_100_same_distribution_repeats():
    flagged_exact = flagged_profile = tested = 0
    for seed in range(100):
        ref, cur = _same_distribution(2 * seed), _same_distribution(2 * seed + 1)
        exact = mlkit.monitor.drift(ref, cur)
        binned = mlkit.monitor.drift(mlkit.monitor.reference_profile(ref), cur)
        tested += len(exact.features)
        flagged_exact += len(exact.drifted_features)
        flagged_profile += len(binned.drifted_features)
    assert tested == 800
    assert flagged_exact / tested <= 0.05
    assert flagged_profile / tested <= 0.05


@pytest.fixture
def shifted(tmp_path, cluster):
    """100k reference rows and 100k current rows (mlkit.data.synthetic), f3 shifted by 0.2 SD."""
    ref = mlkit.data.synthetic(str(tmp_path / "ref"), rows=100_000, features=10, partitions=4,
                               seed=1)
    cur = mlkit.data.synthetic(str(tmp_path / "cur"), rows=100_000, features=10, partitions=4,
                               seed=2)
    ref_df = mlkit.data.read(ref).drop(columns="target")
    cur_df = mlkit.data.read(cur).drop(columns="target")
    cur_df = cur_df.assign(f3=cur_df["f3"] + 0.2)  # the features are standard normal
    return ref_df, cur_df


def test_a_02_sd_shift_in_one_feature_at_100k_rows_is_flagged_alone(shifted):
    ref, cur = shifted
    report = mlkit.monitor.drift(ref, cur)
    assert report.drifted
    assert report.drifted_features == ["f3"]
    assert report.rows_reference == report.rows_current == 100_000
    # The same data in memory gives the exact statistics; the cluster's binned KS brackets them.
    ref_pd, cur_pd = ref.compute(), cur.compute()
    exact = mlkit.monitor.drift(ref_pd, cur_pd)
    assert exact.drifted_features == ["f3"]
    for name in ("f0", "f3", "f9"):
        d, e = report[name], exact[name]
        assert not d.exact and e.exact
        assert d.statistic <= e.statistic + 1e-12 <= d.statistic_upper + 1e-12
        assert d.psi == pytest.approx(e.psi, abs=0.002)


def test_profile_on_the_cluster_scans_only_current_data(shifted):
    ref, cur = shifted
    profile = mlkit.monitor.reference_profile(ref)
    assert profile.rows == 100_000 and profile.names == [f"f{i}" for i in range(10)]
    # Reference counts are exact and add up to the rows.
    assert all(int(p.counts.sum()) == 100_000 for p in profile.features.values())
    report = mlkit.monitor.drift(profile, cur)
    assert report.drifted_features == ["f3"]
    again = mlkit.monitor.drift(ref, cur)
    assert report["f3"].statistic == pytest.approx(again["f3"].statistic)


def test_mixed_inputs_and_categorical_drift_on_the_cluster(cluster):
    import dask.dataframe as dd

    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=20_000),
                        "shop": rng.choice(list("abcd"), 20_000)})
    cur = pd.DataFrame({"x": rng.normal(size=20_000),
                        "shop": rng.choice(list("abcde"), 20_000)})  # a new category "e"
    report = mlkit.monitor.drift(ref, dd.from_pandas(cur, npartitions=3))
    assert report.drifted_features == ["shop"]
    shop = report["shop"]
    assert "__other__" in shop.plot["labels"]
    assert shop.p_value < 1e-100 and shop.js_distance > 0.1


def test_profile_round_trip_file_and_mlflow(tmp_path):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(list("ab"), 5000)})
    cur = ref.assign(x=ref.x + 1.0)
    prof = mlkit.monitor.reference_profile(ref)
    path = prof.save(tmp_path / "sub" / "reference.json")
    assert [p.name for p in path.parent.iterdir()] == ["reference.json"]  # no temp file left
    back = mlkit.monitor.ReferenceProfile.load(path)
    assert back.to_dict() == prof.to_dict()
    assert json.loads(path.read_text())["kind"] == "mlkit.monitor.ReferenceProfile"
    assert mlkit.monitor.drift(str(path), cur).drifted_features == ["x"]

    import mlflow

    with mlkit.track.run("train") as run:
        run_id = prof.log()
        assert run_id == run.info.run_id
        mlflow.log_text("weights", "model/weights.txt")
    for source in (run_id, f"runs:/{run_id}", f"runs:/{run_id}/model"):
        loaded = mlkit.monitor.load_profile(source)
        assert loaded.to_dict() == prof.to_dict()
    assert mlkit.monitor.drift(f"runs:/{run_id}", cur).drifted_features == ["x"]
    assert mlflow.get_run(run_id).info.status == "FINISHED"


def test_profile_found_through_a_logged_model_uri():
    import mlflow
    import xgboost as xgb

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, X.a > 0), 3)
    with mlkit.track.run("train"):
        info = mlflow.xgboost.log_model(booster, name="model", pip_requirements=["xgboost"])
        mlkit.monitor.reference_profile(X).log()
    loaded = mlkit.monitor.load_profile(info.model_uri)
    assert loaded.names == ["a", "b"]


def test_bad_input_gives_one_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=100), "s": ["a"] * 100})
    with pytest.raises(DataError, match=r"reference has no feature\(s\) \['nope'\]"):
        mlkit.monitor.drift(ref, ref, features=["x", "nope"])
    with pytest.raises(DataError, match="'s' is categorical in the reference but numeric"):
        mlkit.monitor.drift(ref, ref.assign(s=1.0))
    with pytest.raises(DataError, match="no rows"):
        mlkit.monitor.drift(ref, ref.iloc[:0])
    with pytest.raises(DataError, match="shares no column"):
        mlkit.monitor.drift(ref, pd.DataFrame({"y": [1.0]}))
    with pytest.raises(ConfigError, match=r"unknown threshold\(s\) \['psy'\]"):
        mlkit.monitor.drift(ref, ref, thresholds={"psy": 0.1})
    with pytest.raises(ConfigError, match=r"thresholds\['pvalue'\] must be below 1"):
        mlkit.monitor.drift(ref, ref, thresholds={"pvalue": 5})
    with pytest.raises(DataError, match="pandas or dask DataFrame"):
        mlkit.monitor.drift(ref, [1, 2, 3])
    with pytest.raises(DataError, match="does not exist"):
        mlkit.monitor.drift(str(tmp_path / "missing.json"), ref)
    with pytest.raises(ConfigError, match="neither an existing JSON file"):
        mlkit.monitor.drift("not-a-run", ref)
    with pytest.raises(TrackingError, match="has no reference profile"):
        with mlkit.track.run("empty") as run:
            pass
        mlkit.monitor.load_profile(run.info.run_id)
    with pytest.raises(ConfigError, match="bins must be an integer >= 2"):
        mlkit.monitor.reference_profile(ref, bins=1)
    with pytest.raises(DataError, match="dtype datetime64"):
        mlkit.monitor.reference_profile(
            pd.DataFrame({"t": pd.date_range("2026-01-01", periods=3)}), features=["t"])


def test_thresholds_change_the_verdict():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=50_000)})
    cur = pd.DataFrame({"x": rng.normal(0.05, 1, 50_000)})  # tiny but significant shift
    assert mlkit.monitor.drift(ref, cur).drifted
    effect_only = mlkit.monitor.drift(ref, cur, thresholds={"pvalue": None})
    assert not effect_only.drifted and effect_only["x"].psi < 0.2
    loose = mlkit.monitor.drift(ref, cur, thresholds={"pvalue": None, "psi": 0.001})
    assert loose.drifted_features == ["x"] and "PSI" in loose["x"].reasons[0]


def test_missing_values_and_all_missing_current():
    rng = np.random.default_rng(2)
    x = rng.normal(size=3000)
    x[::10] = np.nan
    ref = pd.DataFrame({"x": x, "y": rng.normal(size=3000)})
    cur = pd.DataFrame({"x": rng.normal(size=3000), "y": np.full(3000, np.nan)})
    report = mlkit.monitor.drift(ref, cur)
    assert report["x"].missing_reference == pytest.approx(0.1)
    assert report["x"].n_reference == 2700
    assert report["x"].statistic == pytest.approx(
        stats.ks_2samp(x[~np.isnan(x)], cur.x).statistic)
    assert report.drifted_features == ["y"]
    assert "every value is missing" in report["y"].reasons[0]


def _slow(part):
    import time

    time.sleep(0.5)
    return part


def test_interrupt_leaves_the_cluster_usable(client):
    import threading

    import dask.dataframe as dd

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=40_000)})
    slow = dd.from_pandas(frame, npartitions=40).map_partitions(_slow, meta=frame.iloc[:0])

    def interrupt_once_computing():  # the stop button, pressed while the cluster works on it
        wait_for(lambda: any(client.processing().values()), interval=0.02, backoff=False,
                 what="drift tasks processing")
        press_stop()

    pressed = threading.Thread(target=interrupt_once_computing, daemon=True)
    pressed.start()
    with pytest.raises(KeyboardInterrupt):
        mlkit.monitor.drift(frame, slow)  # 40 partitions x 0.5 s on 2 workers
    pressed.join()
    # the cancelled work is gone
    wait_until_false(lambda: any(client.processing().values()), what="no task processing")
    small = dd.from_pandas(frame.head(2000), npartitions=2)
    assert not mlkit.monitor.drift(frame, small).drifted
