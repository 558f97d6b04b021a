"""DriftReport: notebook HTML, self-contained file, MLflow run, table and text."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import TrackingError


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(7)
    n = 4000
    ref = pd.DataFrame({
        "stable": rng.normal(size=n),
        "moved": rng.normal(size=n),
        "weird name/°": rng.normal(size=n),
        "plan": rng.choice(["basic", "pro", "team"], n),
        "target": rng.integers(0, 2, n),
    })
    cur = pd.DataFrame({
        "stable": rng.normal(size=n),
        "moved": rng.normal(1.0, 1.0, n),
        "weird name/°": rng.normal(size=n),
        "plan": rng.choice(["basic", "pro", "team"], n, p=[0.2, 0.2, 0.6]),
    })
    return mlkit.monitor.drift(ref, cur)


def test_verdict_order_and_table(report):
    assert report.drifted
    assert sorted(report.drifted_features) == ["moved", "plan"]
    names = [r.feature for r in report.features]
    assert names[:2] == report.drifted_features  # drifted first
    frame = report.to_pandas()
    assert list(frame["feature"]) == names
    assert frame["drifted"].tolist() == [True, True, False, False]
    assert {"statistic", "p_value", "psi", "js_distance", "exact"} <= set(frame.columns)
    with pytest.warns(DeprecationWarning, match="to_pandas"):  # the old name still answers
        assert report.to_frame().equals(frame)
    assert report.skipped == ["target"]
    text = str(report)
    assert text.splitlines()[0].startswith("DRIFT: 2 of 4 features drifted")
    assert "not compared (absent from the current data): target" in text


def test_notebook_html_has_table_and_one_overlay_per_feature(report):
    out = report._repr_html_()
    assert out.count("<tr>") == 1 + len(report.features)
    imgs = re.findall(r'<img alt="([^"]+): reference vs current" src="data:image/png;base64,'
                      r'([A-Za-z0-9+/=]+)"', out)
    assert [name for name, _ in imgs] == [r.feature for r in report.features]
    png = base64.b64decode(imgs[0][1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "weird name/°" in out
    assert report.html() == report.html()  # deterministic drawing (stable notebook outputs)


def test_save_writes_one_self_contained_file(report, tmp_path):
    target = tmp_path / "out" / "drift.html"
    path = report.save(target)
    assert path == target and sorted(p.name for p in target.parent.iterdir()) == ["drift.html"]
    doc = target.read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    assert "http://" not in doc and "https://" not in doc  # nothing fetched from elsewhere
    assert doc.count("data:image/png;base64,") == len(report.features)


def test_log_records_metrics_and_html_in_the_active_run(report, tmp_path):
    import mlflow

    with mlkit.track.run("check") as run:
        assert report.log() == run.info.run_id
    logged = mlflow.get_run(run.info.run_id)
    metrics = logged.data.metrics
    assert metrics["drift/drifted"] == 1.0 and metrics["drift/n_drifted"] == 2.0
    assert metrics["drift/moved/drifted"] == 1.0
    assert metrics["drift/moved/psi"] == pytest.approx(report["moved"].psi)
    assert metrics["drift/stable/p_value"] == pytest.approx(report["stable"].p_value)
    # Characters MLflow refuses in metric names (and the "/" separator) become "_".
    assert metrics["drift/weird name__/drifted"] == 0.0
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "drift")}
    assert files == {"drift/drift_report.html", "drift/drift_report.json"}
    html_doc = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/drift/drift_report.html")
    assert "DRIFT: 2 of 4 features drifted" in html_doc
    assert logged.info.status == "FINISHED"


def test_log_without_an_active_run_starts_a_finished_one(report):
    import mlflow

    run_id = report.log()
    run = mlflow.get_run(run_id)
    assert run.info.run_name == "drift-report" and run.info.status == "FINISHED"
    assert mlflow.active_run() is None


def test_profile_log_needs_a_run():
    prof = mlkit.monitor.reference_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    with pytest.raises(TrackingError, match="no active MLflow run"):
        prof.log()
