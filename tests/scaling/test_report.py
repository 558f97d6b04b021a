"""mlkit.scaling.report on a real LocalCluster, with a real MLflow store under the test's home.

One small report (workers 1,2) is measured once for the module; every test reads it.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import mlkit
from mlkit.exceptions import ConfigError
from mlkit.scaling._table import THROUGHPUT, metric_name

# A ceiling for a hang only: the module's one report runs inside the first test's time, and a
# loaded 2-core machine (several people's tests at once) runs it many times slower than idle.
pytestmark = pytest.mark.timeout(1800)

SMALL = {"rows": 2000, "rounds": 4, "trials": 2, "requests": 4, "clients": (1, 4),
         "train_fractions": (0.5, 1.0)}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A report measured once; the module keeps its own mlkit home (and so its MLflow store).

    No cluster is active when it starts (an earlier module's may be), so the report starts
    its own, which it must stop again."""
    mlkit.cluster.down()
    home = tmp_path_factory.mktemp("scaling-home")
    out = tmp_path_factory.mktemp("scaling-out") / "report"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLKIT_HOME", str(home))
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            mp.delenv(name, raising=False)
        rep = mlkit.scaling.report(workers=(1, 2), out=out, progress=False, **SMALL)
        uri = mlkit.track.tracking_uri()
        yield rep, uri, out
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


def test_the_table_has_one_row_per_measure_and_worker_count(measured):
    rep, _, _ = measured
    t = rep.table
    throughput = t[t["measure"].isin(THROUGHPUT)]
    assert sorted(map(tuple, throughput[["measure", "workers"]].to_numpy().tolist())) == sorted(
        (m, w) for m in THROUGHPUT for w in (1, 2)
    )
    assert (throughput["value"] > 0).all()
    assert set(throughput["unit"]) == {"rows/s", "rounds/s", "trials/min"}
    # latency: one row per percentile and number of clients, p99 never below p50
    for measure in ("latency_p50", "latency_p99", "serve_rate"):
        rows = t[t["measure"] == measure]
        assert sorted(rows["clients"].tolist()) == [1, 4], measure
    p50 = t[t["measure"] == "latency_p50"].set_index("clients")["value"]
    p99 = t[t["measure"] == "latency_p99"].set_index("clients")["value"]
    assert (p99 >= p50).all() and (p50 > 0).all()
    # accuracy against training rows: one row per share, more rows for a larger share
    acc = t[t["measure"] == "accuracy"]
    assert len(acc) == 2 and acc["train_rows"].is_monotonic_increasing
    assert acc["train_rows"].iloc[-1] > 1000 and acc["value"].between(0.5, 1).all()
    assert not t.duplicated(["measure", "workers", "clients", "train_rows"]).any()


def test_efficiency_is_measured_over_the_linear_ideal(measured):
    rep, _, _ = measured
    t = rep.table
    for measure in THROUGHPUT:
        rows = t[t["measure"] == measure].set_index("workers")
        base = rows.loc[1, "value"]
        assert rows.loc[1, "ideal"] == pytest.approx(base)
        assert rows.loc[2, "ideal"] == pytest.approx(2 * base)
        assert np.allclose(rows["efficiency"], rows["value"] / rows["ideal"])
        assert rows.loc[1, "efficiency"] == pytest.approx(1.0)
    others = t[~t["measure"].isin(THROUGHPUT)]
    assert others["ideal"].isna().all() and others["efficiency"].isna().all()
    eff = rep.efficiency()
    assert list(eff.columns) == [1, 2] and set(eff.index) == set(THROUGHPUT)


def test_the_html_report_is_self_contained(measured):
    rep, _, out = measured
    assert rep.html_path == out / "scaling_report.html"
    text = rep.html_path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text)
    assert links and all(link.startswith("data:image/png;base64,") for link in links), links
    assert not re.search(r"https?://", text.replace("http://127.0.0.1", ""))
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert len(links) == len(rep.figures) == 4
    for measure in (*THROUGHPUT, "latency_p99", "accuracy"):
        assert f"<td>{measure}</td>" in text
    assert (out / "scaling_report.csv").exists()
    assert {"throughput", "efficiency", "latency", "accuracy"} == set(rep.figures)
    assert all(fig.axes for fig in rep.figures.values())


def test_the_mlflow_run_is_finished_with_the_metrics_and_the_html(measured):
    from mlflow import MlflowClient

    rep, uri, _ = measured
    client = MlflowClient(uri)
    run = client.get_run(rep.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlkit.kind"] == "scaling-report"
    assert run.data.params["workers"] == "1,2"
    metrics = run.data.metrics
    for row in rep.table.to_dict("records"):
        assert metrics[metric_name(row)] == pytest.approx(row["value"])
        if row["measure"] in THROUGHPUT:
            assert metrics[metric_name(row, "efficiency")] == pytest.approx(row["efficiency"])
    assert "train_rounds_per_s/w2" in metrics and "latency_p99_ms/w2_c4" in metrics
    artifacts = {a.path for a in client.list_artifacts(rep.run_id)}
    assert {"scaling_report.html", "scaling_report.csv"} <= artifacts
    # only the report's own run: training and tuning opened none of their own
    runs = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in runs] == [rep.run_id]


def test_the_cluster_the_report_started_is_stopped(measured):
    assert mlkit.cluster.current() is None


@pytest.mark.parametrize("bad", [0, "1,x", "machine+1", [2, -1], 1.5])
def test_a_bad_workers_value_is_one_clear_error_before_anything_runs(bad, tmp_path, mlkit_home):
    if bad == "machine+1":
        bad = (1, (os.cpu_count() or 1) + 1)
    mlkit.cluster.down()
    out = tmp_path / "never"
    with pytest.raises(ConfigError) as err:
        mlkit.scaling.report(workers=bad, out=out, progress=False)
    assert f"workers={bad!r}" in str(err.value)
    assert "\n" not in str(err.value)
    assert mlkit.cluster.current() is None  # no cluster was started
    assert not out.exists() and not mlkit_home.exists()  # nothing was written


def test_bad_sizes_are_refused_before_anything_runs(tmp_path, mlkit_home):
    with pytest.raises(ConfigError, match="clients="):
        mlkit.scaling.report(workers=1, out=tmp_path / "x", clients=(1, 0))
    with pytest.raises(ConfigError, match="rows must be at least 1,000"):
        mlkit.scaling.report(workers=1, out=tmp_path / "x", rows=10)
    with pytest.raises(ConfigError, match="scale must be a positive integer"):
        mlkit.scaling.report(workers=1, out=tmp_path / "x", scale=0)
    assert mlkit.cluster.current() is None and not mlkit_home.exists()
