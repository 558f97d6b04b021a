"""mlkit's tracking server: a real ``mlflow server`` started, used, guarded and stopped.

(The same server bound to a test host's address, reached from workers on other hosts, is in
tests/multihost/test_tracking.py.)
"""

from __future__ import annotations

import json
import os
import socket
import stat

# Imported here, before any cluster: main's warm-up (mlkit.cluster._warm) imports MLflow in a
# background thread after up(), and a first `import mlflow` in the test thread meanwhile can
# fail with Python's _DeadlockError (seen here: 'mlflow.store.tracking').
import mlflow
import psutil
import pytest
import requests

import mlkit
from mlkit.exceptions import TrackingError

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"
START_TIMEOUT = 300  # a loaded 2-core machine takes minutes to import MLflow's server


def _no_proxy() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def _group_gone(pid: int) -> bool:
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pid and p.status() != psutil.STATUS_ZOMBIE:
                return False
        except (ProcessLookupError, psutil.Error):
            continue
    return True


def _task_logs_a_run():  # runs on a Dask worker: the URI comes from the worker's environment
    import mlflow

    import mlkit

    with mlkit.track.run("from-a-worker") as r:
        mlflow.log_metric("loss", 0.25)
    return r.info.run_id, mlkit.track.tracking_uri()


def test_loopback_server_has_no_auth_serves_artifacts_reaches_workers_and_stops_clean(
        cluster, mlkit_home):
    srv = mlkit.track.serve_tracking(timeout=START_TIMEOUT)
    try:
        assert srv.url.startswith("http://127.0.0.1:") and srv.auth is False
        assert mlkit.track.tracking_uri() == srv.url
        assert _no_proxy().get(srv.url + SEARCH, timeout=10).status_code == 200  # no auth
        # Recorded like the scoring servers, and found again instead of started twice.
        listed = {s.name: s for s in mlkit.serve.list_servers()}
        assert listed["tracking"].url == srv.url and listed["tracking"]._entry["kind"] == "tracking"
        assert mlkit.track.serve_tracking().pid == srv.pid

        with mlkit.track.run("on-the-client") as r:
            mlflow.log_text("hello", "note.txt")
        info = mlflow.get_run(r.info.run_id).info
        assert info.artifact_uri.startswith("mlflow-artifacts:/")  # served, not a client path
        saved = list((mlkit_home / "tracking" / "artifacts").rglob("note.txt"))
        assert [p.read_text() for p in saved] == ["hello"]

        # The workers got the server through the plugin: a run opened in a task lands there.
        run_id, uri = cluster.client.submit(_task_logs_a_run, pure=False).result(timeout=120)
        assert uri == srv.url
        got = mlflow.MlflowClient(srv.url).get_run(run_id)
        assert got.info.status == "FINISHED" and got.data.metrics == {"loss": 0.25}
    finally:
        stopped = mlkit.track.stop_tracking()
    assert stopped is True
    assert _group_gone(srv.pid)
    assert "tracking" not in {s.name for s in mlkit.serve.list_servers()}
    # This process and the workers are back on the local store.
    assert mlkit.track.tracking_uri() == mlkit.track._defaults.default_uri()
    workers = cluster.client.run(lambda: os.environ.get("MLFLOW_TRACKING_URI"))
    assert srv.url not in workers.values()
    assert mlkit.track.stop_tracking() is False


def test_auth_server_refuses_requests_without_credentials_and_keeps_them_private(mlkit_home):
    srv = mlkit.track.serve_tracking("127.0.0.1", auth=True, timeout=START_TIMEOUT)
    try:
        assert srv.auth is True and srv.username == "mlkit"
        http = _no_proxy()
        assert http.get(srv.url + SEARCH, timeout=10).status_code == 401
        assert http.get(srv.url + SEARCH, timeout=10,
                        auth=("mlkit", "not-the-password")).status_code == 401
        creds_file = mlkit_home / "tracking" / "credentials.json"
        creds = json.loads(creds_file.read_text())
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((mlkit_home / "tracking" / "basic_auth.ini").stat().st_mode) == 0o600
        assert creds["password"] not in (mlkit_home / "tracking" / "basic_auth.ini").read_text()
        assert http.get(srv.url + SEARCH, timeout=10,
                        auth=(creds["username"], creds["password"])).status_code == 200
        # mlkit's own runs carry the credentials (MLFLOW_TRACKING_USERNAME/PASSWORD).
        with mlkit.track.run("guarded") as r:
            mlflow.log_param("p", 1)
        assert mlflow.get_run(r.info.run_id).data.params == {"p": "1"}

        # Its artifact store as an fsspec filesystem (where checkpoints go without MLKIT_STORE).
        import fsspec

        base = f"mlflow-artifacts://{srv.url.split('://', 1)[1]}/mlkit/t"
        fs, root = fsspec.core.url_to_fs(base)
        with fsspec.open(f"{base}/a/round-000005.ubj", "wb") as f:
            f.write(b"five")
        fs.pipe_file(f"{root}/a/round-000010.ubj", b"ten")
        assert sorted(p.rsplit("/", 1)[1] for p in fs.glob(f"{root}/a/round-*.ubj")) == [
            "round-000005.ubj", "round-000010.ubj"]
        assert fs.cat_file(f"{root}/a/round-000010.ubj") == b"ten"
        assert fs.info(f"{root}/a/round-000005.ubj")["size"] == 4
        fs.rm_file(f"{root}/a/round-000005.ubj")
        assert not fs.exists(f"{root}/a/round-000005.ubj") and fs.exists(f"{root}/a")
        with pytest.raises(FileNotFoundError):
            fs.rm_file(f"{root}/a/missing.ubj")
        saved = mlkit_home / "tracking" / "artifacts" / "mlkit" / "t" / "a" / "round-000010.ubj"
        assert saved.read_bytes() == b"ten"
        os.environ.pop("MLFLOW_TRACKING_PASSWORD")
        try:
            with pytest.raises(PermissionError, match="HTTP 401"):
                fs.cat_file(f"{root}/a/round-000010.ubj")
        finally:
            os.environ["MLFLOW_TRACKING_PASSWORD"] = creds["password"]
    finally:
        mlkit.track.stop_tracking()
    assert _group_gone(srv.pid)
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ


def _busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("kwargs, says", [
    ({"host": "203.0.113.7"}, "cannot start the tracking server on 203.0.113.7:0"),
    ({"host": "no-such-host.invalid"}, "host='no-such-host.invalid' is not an address"),
    ({"port": 70000}, "port must be an integer in 0..65535"),
    ({"port": "5000"}, "port must be an integer in 0..65535"),
    ({"host": ""}, "host must be an address"),
    ({"auth": "yes"}, "auth must be True, False or None"),
    ({"timeout": 0}, "timeout must be a positive number"),
])
def test_bad_address_or_argument_is_one_clear_error_and_starts_nothing(kwargs, says, mlkit_home):
    with pytest.raises(TrackingError) as err:
        mlkit.track.serve_tracking(**kwargs)
    assert says in str(err.value)
    assert mlkit.track.tracking_server() is None
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_busy_port_and_unguarded_network_address_are_refused(mlkit_home):
    with _busy_port() as s:
        port = s.getsockname()[1]
        with pytest.raises(TrackingError, match=f"port {port} is in use there"):
            mlkit.track.serve_tracking("127.0.0.1", port)
    with pytest.raises(TrackingError, match="always guards it with MLflow's basic auth"):
        mlkit.track.serve_tracking("0.0.0.0", auth=False)
    assert mlkit.track.tracking_server() is None


def test_a_store_the_user_chose_wins(monkeypatch, mlkit_home):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    with pytest.raises(TrackingError, match="MLFLOW_TRACKING_URI='http://tracking.example:5000' "
                                            "is set: tracking goes there"):
        mlkit.track.serve_tracking()
    # mlkit's own default (MLflow copies it into the variable) is no choice of the user's.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlkit.track._defaults.default_uri())
    with pytest.raises(TrackingError, match="port must be"):  # got past the store check
        mlkit.track.serve_tracking(port=-1)


def test_connect_rejects_an_unknown_tracking_choice():
    from mlkit.exceptions import ConfigError

    with pytest.raises(ConfigError, match="tracking='yes': pass 'server'"):
        mlkit.cluster.connect("tcp://127.0.0.1:1", tracking="yes")
