"""The served model over real HTTP: predictions, signature enforcement, error bodies, metrics,
the prediction log, the registry of running servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests._wait import wait_for


def _post(server, body, ctype="application/json", headers=None):
    import requests

    return requests.post(f"{server.url}/invocations", data=body, timeout=60,
                         headers={"Content-Type": ctype, **(headers or {})})


def _split(df):
    return json.dumps({"dataframe_split": df.to_dict(orient="split")})


# -- predictions ---------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["plain", "inst"])
def test_predict_matches_the_model_in_process(which, servers, demo):
    import pandas as pd

    X = demo.X.iloc[10:60]
    out = servers[which].predict(X)
    assert isinstance(out, pd.Series) and out.name == "prediction"
    assert out.index.equals(X.index)
    assert out.tolist() == demo.model.predict(X).tolist()


def test_handle_attributes_and_status(servers, demo):
    plain, inst = servers["plain"], servers["inst"]
    assert plain.url.startswith("http://127.0.0.1:") and plain.port > 0
    st = plain.status()
    assert st["alive"] and st["ready"] and st["kind"] == "mlflow"
    assert st["model"] == "models:/demo@champion" and st["version"] == demo.version
    assert st["metrics_url"] is None and st["predictions"] is None
    assert "Uvicorn running" in plain.log_path.read_text()
    ist = inst.status()
    assert ist["kind"] == "mlkit" and ist["metrics_url"] == f"{inst.url}/metrics"
    assert ist["predictions"] == str(demo.home / "predictions" / "inst")
    assert plain.log_path.parent == demo.home / "servers" / "plain"


def test_predict_errors_are_serve_errors(servers, demo):
    from mlkit.exceptions import ServeError

    with pytest.raises(ServeError, match=r"(?s)HTTP 400.*missing inputs \['f2'\]"):
        servers["inst"].predict(demo.X.drop(columns=["f2"]).head(2))
    with pytest.raises(ServeError, match="pandas DataFrame"):
        servers["inst"].predict("f0=1")


# -- signature enforcement -----------------------------------------------------------------
BAD_REQUESTS = [
    ("malformed JSON", b'{"dataframe_split": {', "application/json", 400, "valid JSON"),
    ("missing column", json.dumps({"dataframe_records": [{"f0": 1.0, "f1": 2.0,
                                                          "color": "red"}]}),
     "application/json", 400, r"missing inputs \['f2'\]"),
    ("wrong type", json.dumps({"dataframe_records": [{"f0": "abc", "f1": 2.0, "f2": 1.0,
                                                      "color": "red"}]}),
     "application/json", 400, "Failed to convert column f0"),
    ("a list, not an object", "[1, 2, 3]", "application/json", 400, "Received a list"),
    ("unknown key", json.dumps({"rows": [[1, 2, 3, "red"]]}), "application/json", 400,
     "exactly one of the input fields"),
    ("content type", "f0=1", "text/plain", 415, "content types"),
]


@pytest.mark.parametrize("which", ["plain", "inst"])
@pytest.mark.parametrize("label,body,ctype,status,pattern", BAD_REQUESTS,
                         ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_4xx_and_the_server_stays_up(which, label, body, ctype, status,
                                                      pattern, servers, demo):
    import re

    server = servers[which]
    resp = _post(server, body, ctype)
    assert resp.status_code == status, resp.text[:300]
    assert re.search(pattern, resp.text), resp.text[:300]
    ok = _post(server, _split(demo.X.head(3)))
    assert ok.status_code == 200
    assert ok.json()["predictions"] == demo.model.predict(demo.X.head(3)).tolist()


def test_extra_columns_are_ignored(servers, demo):
    """Signature enforcement keeps the declared columns; extras are dropped, as MLflow does."""
    X = demo.X.head(4).assign(unused=1.0, note="x")
    for server in servers.values():
        resp = _post(server, _split(X))
        assert resp.status_code == 200
        assert resp.json()["predictions"] == demo.model.predict(demo.X.head(4)).tolist()


def test_instrumented_error_bodies_are_clean(servers):
    """mlkit's server drops MLflow's stack traces, bounds the echoed input, adds request_id."""
    plain, inst = servers["plain"], servers["inst"]
    body = "{" + "x" * 200_000  # invalid JSON: MLflow echoes the whole body in its message
    assert len(_post(plain, body).content) > 200_000
    resp = _post(inst, body, headers={"X-Request-ID": "client-req-1"})
    assert resp.status_code == 400 and len(resp.content) < 3000
    payload = resp.json()
    assert payload["request_id"] == "client-req-1" == resp.headers["x-request-id"]
    assert "elided" in payload["message"] and "stack_trace" not in payload
    csv = _post(inst, "f0,f1\n1,abc\n", "text/csv")  # MLflow adds a stack trace here
    assert csv.status_code == 400 and "stack_trace" not in csv.json()
    assert "stack_trace" in _post(plain, "f0,f1\n1,abc\n", "text/csv").json()
    # ... the trace goes to the server log instead, under the request id
    assert f"mlkit: request {csv.headers['x-request-id']} failed" in inst.logs(100_000)


def test_list_in_a_string_column_is_a_client_error(servers):
    row = {"f0": 1.0, "f1": 2.0, "f2": 3.0, "color": ["red"]}
    resp = _post(servers["inst"], json.dumps({"dataframe_records": [row]}))
    assert resp.status_code == 400
    assert "column 'color' must hold strings" in resp.json()["message"]


def test_model_crash_is_a_500_on_the_instrumented_server(servers, demo):
    """Infinity passes the double signature; the scaler then feeds inf to LogisticRegression,
    which raises. mlkit: 500 (the model's fault), traceback in the log. MLflow: 400."""
    row = '{"dataframe_records": [{"f0": Infinity, "f1": 2.0, "f2": 3.0, "color": "red"}]}'
    inst = _post(servers["inst"], row)
    assert inst.status_code == 500
    assert "the model failed while predicting" in inst.json()["message"]
    assert "stack_trace" not in inst.json()
    assert f"the model failed on request {inst.headers['x-request-id']}" in servers["inst"].logs(
        10_000)
    assert _post(servers["plain"], row).status_code == 400
    assert servers["inst"].predict(demo.X.head(2)).tolist() == demo.model.predict(
        demo.X.head(2)).tolist()


# -- metrics -------------------------------------------------------------------------------
def _scrape(server):
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(server.metrics_url, timeout=30).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_prometheus_metrics_count_requests_latency_and_errors(servers, demo):
    inst = servers["inst"]
    before = _scrape(inst)
    for _ in range(3):
        assert _post(inst, _split(demo.X.head(4))).status_code == 200
    assert _post(inst, "{nope").status_code == 400
    assert _post(inst, "x", "text/plain").status_code == 415
    after = _scrape(inst)
    inv = "/invocations"

    def delta(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("mlkit_serve_requests_total", path=inv, method="POST", status="200") == 3
    assert delta("mlkit_serve_requests_total", path=inv, method="POST", status="400") == 1
    assert delta("mlkit_serve_request_errors_total", path=inv, status="400") == 1
    assert delta("mlkit_serve_request_errors_total", path=inv, status="415") == 1
    assert delta("mlkit_serve_request_duration_seconds_count", path=inv) == 5
    assert delta("mlkit_serve_request_duration_seconds_bucket", path=inv, le="+Inf") == 5
    assert delta("mlkit_serve_request_duration_seconds_sum", path=inv) > 0
    assert delta("mlkit_serve_predicted_rows_total") == 12
    assert _value(after, "process_resident_memory_bytes") > 0  # prometheus_client's own
    import requests

    assert requests.get(f"{servers['plain'].url}/metrics", timeout=30).status_code == 404


# -- prediction log ------------------------------------------------------------------------
def _log_frame(folder):
    import pandas as pd

    files = sorted(folder.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else None


def test_prediction_log_format(servers, demo):
    import pandas as pd

    inst = servers["inst"]
    folder = inst.predictions_path
    # The log flushes every 5 scored requests. Other tests' requests leave an unknown remainder in
    # the buffer, so after our 5 we add filler requests one at a time until ours are on disk:
    # at most 4 are ever needed.
    n = 5
    ids, frames = [], []
    t0 = pd.Timestamp.now(tz="UTC")
    for i in range(n):
        X = demo.X.iloc[i * 3: i * 3 + 3]
        rid = f"log-test-{i}"
        resp = _post(inst, _split(X), headers={"X-Request-ID": rid})
        assert resp.status_code == 200 and resp.headers["x-request-id"] == rid
        ids.append(rid)
        frames.append(X)
    t1 = pd.Timestamp.now(tz="UTC")
    log = _log_frame(folder)

    def logged() -> bool:
        # the log flushes every N requests: filler requests push the last of ours out
        nonlocal log
        log = _log_frame(folder)
        if log is not None and set(ids) <= set(log["_mlkit_request_id"]):
            return True
        assert _post(inst, _split(demo.X.iloc[:1])).status_code == 200
        return False

    wait_for(logged, interval=0.2, what="every request of the test in the prediction log")
    assert log is not None
    # each file: input columns as received (extra ones of other requests too), then the log's
    for f in folder.glob("part-*.parquet"):
        columns = list(pd.read_parquet(f).columns)
        assert columns[:4] == ["f0", "f1", "f2", "color"], f
        assert columns[-3:] == ["prediction", "_mlkit_time", "_mlkit_request_id"], f
    assert str(log["_mlkit_time"].dtype) == "datetime64[ns, UTC]"
    mine = log[log["_mlkit_request_id"].isin(ids)].reset_index(drop=True)
    sent = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(mine[["f0", "f1", "f2"]], sent[["f0", "f1", "f2"]])
    assert mine["color"].tolist() == sent["color"].tolist()
    assert mine["prediction"].tolist() == demo.model.predict(sent).tolist()
    assert mine["_mlkit_request_id"].tolist() == [r for r in ids for _ in range(3)]
    assert ((mine["_mlkit_time"] >= t0) & (mine["_mlkit_time"] <= t1)).all()
    names = [p.name for p in folder.iterdir()]
    assert all(n.startswith("part-") and n.endswith(f"-{inst.pid}.parquet") for n in names), names


def test_prediction_log_is_readable_by_monitor(servers, demo, at_serve_home):
    """The cross-area contract: mlkit.monitor reads what the server wrote."""
    import mlkit

    inst = servers["inst"]
    folder = inst.predictions_path

    def a_log_file():
        files = list(folder.glob("part-*.parquet"))
        if not files:
            _post(inst, _split(demo.X.head(1)))  # traffic makes the server flush
        return files

    wait_for(a_log_file, interval=0.2, what="a prediction log file")
    live = mlkit.monitor.predictions("inst", since=None).compute()
    assert len(live) == len(_log_frame(folder))
    assert {"f0", "color", "prediction", "_mlkit_request_id"} <= set(live.columns)


# -- the registry of running servers -------------------------------------------------------
def test_list_get_and_cli_list_after_a_restart(servers, demo, at_serve_home):
    import mlkit

    names = [s.name for s in mlkit.serve.list_servers()]
    assert names == ["inst", "plain"]
    assert mlkit.serve.get("plain").url == servers["plain"].url
    assert "plain" in repr(mlkit.serve.list_servers())
    table = mlkit.serve.list_servers().to_pandas()
    assert table.name.tolist() == ["inst", "plain"]
    assert table.set_index("name").url["plain"] == servers["plain"].url
    # A new process (a restarted kernel) finds them through the registry file.
    env = {**os.environ, "MLKIT_HOME": str(demo.home)}
    out = subprocess.run([sys.executable, "-m", "mlkit.cli", "serve", "list"], env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "plain" in out and servers["plain"].url in out and "inst" in out
    code = ("import mlkit; s = mlkit.serve.get('plain'); "
            "print(s.predict(__import__('pandas').DataFrame("
            "{'f0': [0.0], 'f1': [0.0], 'f2': [0.0], 'color': ['red']})).tolist())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip() in ("[0]", "[1]")


def test_stale_registry_entries_are_pruned(demo, at_serve_home):
    import psutil

    import mlkit
    from mlkit.serve import _running

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    created = psutil.Process(dead.pid).create_time()
    dead.wait()
    _running.add({"name": "ghost", "pid": dead.pid, "pgid": dead.pid, "create_time": created,
                   "url": "http://127.0.0.1:1", "model": "x", "port": 1,
                   "started": "2026-01-01T00:00:00+00:00"})
    assert "ghost" in _running.read(prune=False)
    assert "ghost" not in [s.name for s in mlkit.serve.list_servers()]
    assert "ghost" not in _running.read(prune=False)  # removed from the file too
    with pytest.raises(mlkit.exceptions.ServeError, match="no server named 'ghost'"):
        mlkit.serve.stop("ghost")


def test_start_refuses_a_name_in_use(servers, demo, at_serve_home):
    import mlkit

    with pytest.raises(mlkit.exceptions.ServeError, match="already running"):
        mlkit.serve.start(demo.alias_uri, name="plain")
