"""Scale to zero, over real HTTP: idle replicas stop, the next request starts one and is answered,
and the cold start is exported."""

from __future__ import annotations

import json

import pytest

from tests._wait import wait_for

pytestmark = pytest.mark.timeout(900)


def test_idle_replicas_stop_and_the_next_request_wakes_them(demo, helpers):
    import psutil
    import requests

    import mlkit
    from mlkit.exceptions import ServeError

    with helpers.home_env(demo.home):
        with pytest.raises(ServeError, match="scale_to_zero must be a duration"):
            mlkit.serve.start(demo.version_uri, replicas=1, scale_to_zero="soon")
        srv = mlkit.serve.start(demo.version_uri, replicas=1, name="gw-zero",
                                scale_to_zero="2s", timeout=600)
    try:
        first = srv.replicas()[0]["pid"]
        assert first is not None
        wait_for(lambda: srv.replicas()[0]["scaled_to_zero"], what="scaled to zero")
        wait_for(lambda: not psutil.pid_exists(first)
                 or psutil.Process(first).status() == psutil.STATUS_ZOMBIE,
                 what="the idle replica's process gone")
        # the pool clears the pid once it has reaped the stopped process (a moment after the
        # process is a zombie)
        wait_for(lambda: srv.replicas()[0]["pid"] is None, what="the stopped replica reaped")
        s = requests.Session()
        assert s.get(f"{srv.gateway_url}/ready").status_code == 200  # ready, at zero
        body = json.dumps({"dataframe_split": demo.X.head(3).to_dict(orient="split")})
        resp = s.post(f"{srv.url}/invocations", data=body, timeout=300,
                      headers={"Content-Type": "application/json"})
        assert resp.status_code == 200
        assert resp.json()["predictions"] == demo.model.predict(demo.X.head(3)).tolist()
        rep = srv.replicas()[0]
        assert rep["pid"] not in (None, first) and rep["restarts"] == 0
        metrics = s.get(srv.metrics_url).text
        count = [line for line in metrics.splitlines()
                 if line.startswith("mlkit_gateway_cold_start_seconds_count")]
        assert count and float(count[0].split()[-1]) == 1.0, count
        print(f"\ncold start: {metrics.split('mlkit_gateway_cold_start_seconds_sum')[1].split()[1]}"
              " s")
    finally:
        srv.stop()
