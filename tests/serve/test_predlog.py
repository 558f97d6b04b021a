"""The prediction-log writer and the error-body policy, in process (no server)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mlkit.serve._middleware import MAX_MESSAGE, clean_error_body
from mlkit.serve._predlog import PredictionLog, log_frame
from tests._wait import wait_for


def _read(folder):
    files = sorted(folder.glob("part-*.parquet"))
    return files, (pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
                   if files else None)


def test_flush_every_n_requests_and_on_close(tmp_path):
    log = PredictionLog(tmp_path / "p", flush_every=3, flush_seconds=3600)
    X = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    for i in range(3):
        assert log.record(X, np.array([0, 1]), 1_000 + i, f"r{i}")
    wait_for(lambda: len(_read(tmp_path / "p")[0]) >= 1, what="the first flush")
    assert log.record(X, np.array([0, 1]), 1_003, "r3")
    files, df = _read(tmp_path / "p")
    assert len(files) == 1 and df["_mlkit_request_id"].tolist() == ["r0", "r0", "r1", "r1",
                                                                      "r2", "r2"]
    log.close()  # the fourth request is still buffered: close writes it
    files, df = _read(tmp_path / "p")
    assert len(files) == 2 and len(df) == 8
    assert list(df.columns) == ["a", "b", "prediction", "_mlkit_time", "_mlkit_request_id"]
    assert df["_mlkit_time"].iloc[-1] == pd.Timestamp(1_003, unit="ns", tz="UTC")
    assert str(df["_mlkit_time"].dtype) == "datetime64[ns, UTC]"
    assert not [p for p in (tmp_path / "p").iterdir() if not p.name.startswith("part-")]
    log.close()  # idempotent
    assert not log.record(X, np.array([0, 1]), 0, "late")  # closed: nothing buffered


def test_flush_every_t_seconds(tmp_path):
    log = PredictionLog(tmp_path / "p", flush_every=1000, flush_seconds=0.2)
    log.record(pd.DataFrame({"a": [1.0]}), [3.5], 5, "r")
    wait_for(lambda: _read(tmp_path / "p")[0], what="the timed flush")
    assert _read(tmp_path / "p")[1]["prediction"].tolist() == [3.5]
    log.close()


def test_multi_output_and_untabulable_predictions():
    X = pd.DataFrame({"a": [1.0, 2.0]})
    two = log_frame(X, np.array([[0.1, 0.9], [0.8, 0.2]]), 0, "r")
    assert list(two.columns) == ["a", "prediction_0", "prediction_1", "_mlkit_time",
                                 "_mlkit_request_id"]
    named = log_frame(X, pd.DataFrame({"p": [1, 2], "q": [3, 4]}), 0, "r")
    assert ["prediction_0", "prediction_1"] == list(named.columns[1:3])
    assert log_frame(X, np.array([1, 2, 3]), 0, "r") is None  # row counts differ
    assert log_frame(X, np.zeros((2, 2, 2)), 0, "r") is None


def test_columns_of_mixed_types_across_requests_still_write(tmp_path):
    log = PredictionLog(tmp_path / "p", flush_every=100, flush_seconds=3600)
    log.record(pd.DataFrame({"a": [1.0], "extra": [5]}), [1], 1, "r1")
    log.record(pd.DataFrame({"a": [2.0], "extra": ["five"]}), [0], 2, "r2")
    log.close()
    df = _read(tmp_path / "p")[1]
    assert df["extra"].tolist() == ["5", "five"] and df["a"].tolist() == [1.0, 2.0]


def test_clean_error_body():
    body = json.dumps({"error_code": "BAD_REQUEST", "message": "x" * 50_000 + " the reason",
                       "stack_trace": "Traceback ...", "sqlstate": "KAM00"}).encode()
    out = json.loads(clean_error_body(body, "rid"))
    assert set(out) == {"error_code", "message", "request_id"}
    assert len(out["message"]) < MAX_MESSAGE + 100 and out["message"].endswith("the reason")
    plain = json.loads(clean_error_body(b"not json at all", "rid"))
    assert plain == {"error_code": "BAD_REQUEST", "message": "not json at all",
                     "request_id": "rid"}
