"""Prediction logs (written here exactly as the serving contract says) and `mlkit monitor`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlkit
from mlkit.cli import cli
from mlkit.exceptions import ConfigError, NoPredictionsError


def write_log(name: str, frame: pd.DataFrame, at_ns: int, pid: int = 4242) -> str:
    """One log file in the contract format: raw inputs, prediction, _mlkit_time (UTC ns),
    _mlkit_request_id; hidden temporary name, then renamed to part-<time_ns>-<pid>.parquet."""
    folder = mlkit.config.home("predictions", name)
    out = frame.reset_index(drop=True).copy()
    stamp = np.full(len(out), at_ns, dtype="int64").view("datetime64[ns]")
    out["_mlkit_time"] = pd.Series(stamp).dt.tz_localize("UTC")
    out["_mlkit_request_id"] = [f"req-{at_ns}-{i}" for i in range(len(out))]
    final = folder / f"part-{at_ns}-{pid}.parquet"
    tmp = folder / f".{final.name}.tmp"
    out.to_parquet(tmp, index=False)
    os.replace(tmp, final)
    return str(final)


def traffic(seed: int, n: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"f0": rng.normal(size=n), "f1": rng.normal(size=n) + shift,
                      "plan": rng.choice(["basic", "pro"], n)})
    x["prediction"] = rng.random(n)
    return x


def hours_ago(h: float) -> int:
    return time.time_ns() - int(h * 3600 * 1e9)


@pytest.fixture
def reference():
    ref = traffic(0, 5000).drop(columns="prediction")
    return mlkit.monitor.reference_profile(ref)


def test_reader_filters_by_time_and_reads_the_contract_columns():
    write_log("churn", traffic(1, 100), hours_ago(5))
    write_log("churn", traffic(2, 50), hours_ago(2))
    write_log("churn", traffic(3, 30), hours_ago(0.5))
    write_log("churn", traffic(4, 20), hours_ago(0.1), pid=777)
    # A writer's temporary file must never be read.
    (mlkit.config.home("predictions", "churn") / ".part-1-1.parquet.tmp").write_bytes(b"junk")
    live = mlkit.monitor.predictions("churn", since="1h")
    got = live.compute()
    assert len(got) == 50
    assert list(got.columns) == ["f0", "f1", "plan", "prediction", "_mlkit_time",
                                 "_mlkit_request_id"]
    assert str(got["_mlkit_time"].dtype) == "datetime64[ns, UTC]"
    assert len(mlkit.monitor.predictions("churn", since="3h").compute()) == 100
    assert len(mlkit.monitor.predictions("churn", since=None).compute()) == 200
    start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=3)
    until = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
    window = mlkit.monitor.predictions("churn", since=start, until=until).compute()
    assert len(window) == 50 and window["_mlkit_request_id"].str.startswith("req-").all()
    only = mlkit.monitor.predictions("churn", since="90m", columns=["f0"]).compute()
    assert list(only.columns) == ["f0", "_mlkit_time"]


def test_reader_errors():
    with pytest.raises(NoPredictionsError, match="no prediction log for 'ghost'"):
        mlkit.monitor.predictions("ghost")
    write_log("old", traffic(1, 10), hours_ago(30))
    with pytest.raises(NoPredictionsError, match="no prediction logged for 'old' since"):
        mlkit.monitor.predictions("old", since="1d")
    with pytest.raises(ConfigError, match="since must be a duration or a date/time"):
        mlkit.monitor.predictions("old", since="soon")
    with pytest.raises(ConfigError, match="must be positive"):
        mlkit.monitor.predictions("old", since="0h")
    with pytest.raises(ConfigError, match="letters, digits"):
        mlkit.monitor.predictions("../etc")
    with pytest.raises(ConfigError, match="until .* must be after since"):
        mlkit.monitor.predictions("old", since="1h", until=dt.datetime(2000, 1, 1))


def test_drift_on_live_traffic_with_the_cluster(reference, cluster):
    write_log("churn", traffic(5, 3000, shift=0.5), hours_ago(0.2))
    live = mlkit.monitor.predictions("churn", since="1h")
    report = mlkit.monitor.drift(reference, live)
    assert report.drifted_features == ["f1"]
    assert report.rows_current == 3000
    assert report.skipped == []  # _mlkit_* and prediction are not reference features


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["monitor", *args], catch_exceptions=False)


def test_cli_exit_codes_and_output(reference, tmp_path):
    ref_path = str(reference.save(tmp_path / "ref.json"))
    write_log("stable", traffic(6, 2000), hours_ago(0.3))
    ok = _invoke("stable", "--since", "1h", "--reference", ref_path)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("no drift: 0 of 3 features drifted")

    write_log("moved", traffic(7, 2000, shift=1.0), hours_ago(0.3))
    html = tmp_path / "report.html"
    bad = _invoke("moved", "--reference", ref_path, "--html", str(html))
    assert bad.exit_code == 1
    assert bad.output.startswith("DRIFT: 1 of 3 features drifted (f1)")
    assert html.read_text().startswith("<!DOCTYPE html>")

    as_json = _invoke("moved", "-r", ref_path, "--json", "-t", "pvalue=none", "-t", "psi=5")
    assert as_json.exit_code == 0  # both criteria off or out of reach
    assert json.loads(as_json.output)["drifted"] is False

    quiet = _invoke("moved", "-r", ref_path, "--since", "1m")
    assert quiet.exit_code == 0 and "nothing to check" in quiet.output


def test_cli_errors_exit_2_and_registered_reference(reference, tmp_path):
    write_log("svc", traffic(8, 500), hours_ago(0.1))
    missing = _invoke("svc")
    assert missing.exit_code == 2
    assert "no reference registered for 'svc'" in missing.output
    assert _invoke("svc", "-r", str(tmp_path / "nope.json")).exit_code == 2
    mlkit.monitor.register_reference("svc", reference)
    assert _invoke("svc").exit_code == 0
    assert _invoke("svc", "--since", "later").exit_code == 2
    assert _invoke("svc", "--features", "f0,nope").exit_code == 2
    assert _invoke("svc", "-t", "psi=-1").exit_code == 2


def test_cli_as_a_real_process(reference, tmp_path, mlkit_home):
    ref_path = str(reference.save(tmp_path / "ref.json"))
    write_log("proc", traffic(9, 2000, shift=1.0), hours_ago(0.1))
    env = {**os.environ, "MLKIT_HOME": str(mlkit_home)}
    done = subprocess.run(
        [sys.executable, "-m", "mlkit.cli", "monitor", "proc", "--reference", ref_path],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "DRIFT: 1 of 3 features drifted (f1)" in done.stdout


def test_magic_and_check_api(reference, shell):
    from IPython.core.error import UsageError

    mlkit.monitor.register_reference("magic", reference)
    assert mlkit.monitor.check("magic") is None  # no traffic yet
    write_log("magic", traffic(10, 2000, shift=1.0), hours_ago(0.2))
    report = shell.run_line_magic("mlscale", "monitor magic --since 1h")
    assert report.drifted_features == ["f1"]
    same = mlkit.monitor.check("magic", since="1h", features=["f0", "f1"])
    assert [r.feature for r in same.features] == ["f1", "f0"]
    with pytest.raises(UsageError, match="since must be a duration"):
        shell.run_line_magic("mlscale", "monitor magic --since tomorrowish")
