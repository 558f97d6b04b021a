"""The serve widget against a live gateway (one real replica over HTTP): the numbers it shows
are the requests, rows per model call, errors and replica states the test produced, and once
the gateway stops its display bundle is the static final state."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests._wait import wait_for

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def model_dir(tmp_path):
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (X.a + X.b > 0).astype("int64")
    model = LogisticRegression().fit(X, y)
    path = tmp_path / "tiny-model"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X, model.predict(X)),
                              pip_requirements=["scikit-learn"],
                              skops_trusted_types=["numpy.dtype"])
    return path, X


def test_widget_values_follow_a_live_gateway(model_dir):
    import requests

    import mlkit
    from mlkit._display import WIDGET_VIEW_MIME
    from mlkit.widgets.serve import ServeWidget

    path, X = model_dir
    srv = mlkit.serve.start(path, replicas=1, name="widget-gw", max_batch_rows=64, timeout=600)
    try:
        w = ServeWidget(srv, autostart=False)
        st = w.last_status
        assert st.running and st.requests == 0 and st.rps is None
        assert [(r.index, r.host, r.state) for r in st.replicas] == [(0, "127.0.0.1", "up")]
        assert "127.0.0.1" in w.replica_table.value and ">up<" in w.replica_table.value
        s = requests.Session()
        s.trust_env = False
        body = json.dumps({"dataframe_split": X.head(4).to_dict(orient="split")})
        t0 = time.monotonic()
        slowest = 0.0
        for _ in range(30):  # one at a time: every model call is exactly one 4-row request
            t = time.monotonic()
            r = s.post(f"{srv.url}/invocations", data=body,
                       headers={"Content-Type": "application/json"}, timeout=60)
            slowest = max(slowest, time.monotonic() - t)
            assert r.status_code == 200
        for _ in range(3):
            r = s.post(f"{srv.url}/invocations", data="{bad",
                       headers={"Content-Type": "application/json"}, timeout=60)
            assert r.status_code == 400
        elapsed = time.monotonic() - t0
        st = w.refresh()
        assert st.requests == 33 and st.errors == 3 and st.errors_recent == 3
        assert st.batch_rows == 4.0
        assert st.rps is not None and st.rps > 0
        assert 0 < st.p50_ms <= st.p99_ms
        buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
        assert st.p99_ms <= 1000 * min(b for b in buckets if b >= slowest)  # <= what we saw
        print(f"\nserve widget: {st.rps:.1f} req/s over {elapsed:.1f} s of requests, p50 "
              f"{st.p50_ms:.1f} ms, p99 {st.p99_ms:.1f} ms, slowest seen by the client "
              f"{slowest * 1000:.1f} ms")
        assert "req/s" in w.stats.value and "batch: <b>4.0 rows</b>" in w.stats.value
        assert "errors: <b>3 (3 in all)</b>" in w.stats.value
        st = w.refresh()  # nothing happened since the last read
        assert st.requests == 33 and st.rps == 0 and st.errors_recent == 0
        bundle = w._repr_mimebundle_()
        assert WIDGET_VIEW_MIME in bundle and "33" in bundle["text/plain"]
        # a replica killed: the widget shows it restarted and up again
        victim = st.replicas[0].pid
        os.kill(victim, signal.SIGKILL)
        back = wait_for(lambda: [r for r in w.refresh().replicas
                                 if r.restarts == 1 and r.state == "up" and r.pid != victim],
                        timeout=300, what="the widget showing replica 0 restarted and up")
        assert back
        # a gateway that is alive but does not answer in time (stopped by SIGSTOP, as a busy
        # machine would delay it) has not stopped: the widget keeps its numbers and stays live
        os.kill(srv.pid, signal.SIGSTOP)
        try:
            frozen = w.refresh()
        finally:
            os.kill(srv.pid, signal.SIGCONT)
        assert frozen.running and frozen.requests == 33
        assert WIDGET_VIEW_MIME in w._repr_mimebundle_()
    finally:
        srv.stop()
    st = w.refresh()
    assert not st.running and st.requests == 33 and st.replicas[0].state == "stopped"
    bundle = w._repr_mimebundle_()
    assert WIDGET_VIEW_MIME not in bundle  # the final state is static
    assert "stopped" in bundle["text/plain"] and "requests 33" in bundle["text/plain"]
    assert "<b>stopped</b>" in bundle["text/html"] and "stopped" in w.title.value
