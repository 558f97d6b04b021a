"""watch(): the feedback loop on a short interval with a bounded number of checks."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import ConfigError, DataError, NoPredictionsError
from tests._wait import wait_for


def write_log(name: str, frame: pd.DataFrame, at_ns: int | None = None) -> None:
    """A log file in the serving contract's format (see tests/monitor/test_logs.py)."""
    at_ns = at_ns or time.time_ns()
    folder = mlkit.config.home("predictions", name)
    out = frame.reset_index(drop=True).copy()
    stamp = np.full(len(out), at_ns, dtype="int64").view("datetime64[ns]")
    out["_mlkit_time"] = pd.Series(stamp).dt.tz_localize("UTC")
    out["_mlkit_request_id"] = [f"r{at_ns}-{i}" for i in range(len(out))]
    final = folder / f"part-{at_ns}-{os.getpid()}.parquet"
    out.to_parquet(folder / f".{final.name}.tmp", index=False)
    os.replace(folder / f".{final.name}.tmp", final)


def rows(seed: int, n: int = 1500, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n) + shift, "y": rng.normal(size=n),
                         "prediction": rng.random(n)})


@pytest.fixture
def reference():
    return mlkit.monitor.reference_profile(rows(0, 5000)[["x", "y"]])


def test_foreground_loop_runs_bounded_checks_and_calls_on_drift(reference):
    write_log("svc", rows(1, shift=1.0))
    seen = []
    w = mlkit.monitor.watch("svc", every="0.2s", since="1h", on_drift=seen.append,
                            reference=reference, max_checks=3, background=False)
    assert w.checks == 3 and w.drift_events == 3 and not w.running
    assert len(seen) == 3 and all(r.drifted_features == ["x"] for r in seen)
    assert not w.errors


def test_background_thread_sees_new_traffic_and_stops(reference):
    seen: list = []
    fired = threading.Event()

    def on_drift(report):
        seen.append(report)
        fired.set()

    write_log("bg", rows(2))  # healthy traffic first
    w = mlkit.monitor.watch("bg", every=0.3, since="10m", on_drift=on_drift,
                            reference=reference)
    try:
        assert w.running
        wait_for(lambda: w.reports, what="the first report")
        assert w.last_report is not None and not w.last_report.drifted
        write_log("bg", rows(3, n=20_000, shift=2.0))  # then the traffic moves
        assert fired.wait(60)
        assert seen[0].drifted_features == ["x"]
    finally:
        w.stop()
    assert not w.running
    n = w.checks
    time.sleep(0.8)
    assert w.checks == n  # really stopped


def test_once_registered_reference_and_empty_windows(reference):
    mlkit.monitor.register_reference("solo", reference)
    write_log("solo", rows(4))
    w = mlkit.monitor.watch("solo", once=True)
    assert w.checks == 1 and w.last_report is not None and not w.last_report.drifted
    # A window with no traffic is not an error: the check records None.
    write_log("idle", rows(5), at_ns=time.time_ns() - 7200 * 10**9)
    w = mlkit.monitor.watch("idle", once=True, since="1h", reference=reference)
    assert w.reports == type(w.reports)([None]) and w.last_report is None
    with pytest.raises(NoPredictionsError):
        mlkit.monitor.predictions("idle", since="1h")


def test_errors_in_on_drift_are_recorded_and_the_loop_goes_on(reference):
    write_log("flaky", rows(6, shift=1.0))

    def broken(report):
        raise RuntimeError("retrain failed")

    w = mlkit.monitor.watch("flaky", every="0.1s", since="1h", on_drift=broken,
                            reference=reference, max_checks=2, background=False)
    assert w.checks == 2 and len(w.errors) == 2
    assert str(w.errors[0]) == "retrain failed"
    with pytest.raises(RuntimeError, match="retrain failed"):
        mlkit.monitor.watch("flaky", on_drift=broken, reference=reference, once=True)


def test_bad_arguments_fail_before_anything_starts(reference):
    with pytest.raises(ConfigError, match="every must look like"):
        mlkit.monitor.watch("svc", every="hourly", reference=reference)
    with pytest.raises(ConfigError, match="on_drift must be callable"):
        mlkit.monitor.watch("svc", on_drift="retrain.ipynb", reference=reference)
    with pytest.raises(ConfigError, match="max_checks must be a positive integer"):
        mlkit.monitor.watch("svc", max_checks=0, reference=reference)
    with pytest.raises(DataError, match="no reference registered for 'nobody'"):
        mlkit.monitor.watch("nobody")
    assert not [t for t in threading.enumerate() if t.name.startswith("mlkit-watch-")]
