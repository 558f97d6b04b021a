"""Starting and stopping servers: bad arguments, failed starts, several workers, the CLI in the
foreground, magics, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests._wait import wait_for


def _tree(pid):
    import psutil

    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def _assert_gone(procs):
    import psutil

    _gone, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive, [p.pid for p in alive]


# -- bad input: one clear error before anything starts ------------------------------------
@pytest.mark.parametrize("kwargs,pattern", [
    ({"port": -1}, "port must be an integer in 0..65535"),
    ({"port": "80"}, "port must be an integer"),
    ({"workers": 0}, "workers must be a positive integer"),
    ({"name": "bad name!"}, "name must be 1-64 letters"),
    ({"flush_every": 0}, "flush_every must be a positive integer"),
    ({"timeout": 0}, "timeout must be a positive number"),
])
def test_bad_arguments_raise_before_anything_starts(kwargs, pattern, demo, mlkit_home):
    import psutil

    import mlkit

    before = psutil.Process().children(recursive=True)
    with pytest.raises(mlkit.exceptions.ServeError, match=pattern):
        mlkit.serve.start(demo.local_path, **kwargs)
    assert psutil.Process().children(recursive=True) == before
    assert not (mlkit_home / "servers").exists()


@pytest.mark.parametrize("model,pattern", [
    ("/no/such/model", "does not exist"),
    ("models:/nope@champion", "not found in the registry"),
    ("models:/demo@nope", "its aliases are \\['champion'\\]"),
    ("models:/demo/99", "not found in the registry"),
    ("runs:/0123456789abcdef0123456789abcdef/model", "not found"),
    ("runs:/justone", "RUN_ID/ARTIFACT_PATH"),
    ("", "model must be a model URI or a path"),
])
def test_unknown_models_are_refused_up_front(model, pattern, at_serve_home):
    import mlkit

    with pytest.raises(mlkit.exceptions.ServeError, match=pattern):
        mlkit.serve.start(model)


def test_a_busy_port_is_refused(demo, mlkit_home):
    import socket

    import mlkit

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        busy = f"port {port} on 127.0.0.1 is in use"
        with pytest.raises(mlkit.exceptions.ServeError, match=busy):
            mlkit.serve.start(demo.local_path, port=port)


def test_a_server_that_dies_at_start_reports_its_log(demo, mlkit_home, tmp_path):
    """A model folder whose artifact is missing: the server exits; the error shows its log."""
    import shutil

    import psutil

    import mlkit

    broken = tmp_path / "broken-model"
    shutil.copytree(demo.local_path, broken)
    (broken / "model.skops").unlink()
    before = psutil.Process().children(recursive=True)
    with pytest.raises(mlkit.exceptions.ServeError) as info:
        mlkit.serve.start(broken, name="broken")
    message = str(info.value)
    assert "did not start: it exited with code" in message and "Last lines of its log" in message
    assert "model.skops" in message  # the reason, from the server's own log
    assert mlkit.serve.list_servers() == []
    assert psutil.Process().children(recursive=True) == before


def test_a_server_not_ready_in_time_is_killed(demo, mlkit_home):
    import psutil

    import mlkit

    before = psutil.Process().children(recursive=True)
    with pytest.raises(mlkit.exceptions.ServeError, match="did not answer .*/ping within 0.5 s"):
        mlkit.serve.start(demo.local_path, timeout=0.5)  # start-up alone takes seconds
    assert mlkit.serve.list_servers() == []
    assert psutil.Process().children(recursive=True) == before


# -- several workers; stop from another process -------------------------------------------
@pytest.mark.slow
def test_two_workers_metrics_log_and_stop_from_another_process(demo, mlkit_home, shell):
    import pandas as pd
    import psutil
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    import mlkit

    srv = mlkit.serve.start(demo.local_path, name="multi", workers=2, metrics=True,
                            log_predictions=True, flush_seconds=3600)
    procs = _tree(srv.pid)
    assert len(procs) >= 3  # uvicorn's supervisor and two workers
    listed = shell.run_line_magic("mlscale", "serve list")
    assert [s.name for s in listed] == ["multi"]
    ids = []
    for i in range(20):  # a new connection each time, so both workers get requests
        X = demo.X.iloc[[i]]
        resp = requests.post(f"{srv.url}/invocations", headers={"X-Request-ID": f"m{i}"},
                             json={"dataframe_split": X.to_dict(orient="split")}, timeout=60)
        assert resp.status_code == 200
        ids.append(f"m{i}")
    def total():
        text = requests.get(srv.metrics_url, timeout=30).text
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "mlkit_serve_requests_total"
                   and s.labels.get("path") == "/invocations")

    # The middleware counts a request after its response is sent (the status and latency are
    # known then), so the last one may reach the counter a moment after its client has the
    # answer: 19 was read once here under load.
    wait_for(lambda: total() >= 20, timeout=30, what="all 20 requests counted")
    assert total() == 20  # summed over both workers (prometheus_client multiprocess mode)
    assert not list(srv.predictions_path.glob("part-*.parquet"))  # still buffered
    # Another process (e.g. after a kernel restart) stops it through the registry.
    env = {**os.environ, "MLKIT_HOME": str(mlkit_home)}
    out = subprocess.run([sys.executable, "-m", "mlkit.cli", "serve", "stop", "multi"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "stopped: multi" in out.stdout
    _assert_gone(procs)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)
    assert mlkit.serve.list_servers() == []
    # Shutdown flushed every buffered request, each worker to its own file.
    files = sorted(srv.predictions_path.glob("part-*.parquet"))
    log = pd.concat([pd.read_parquet(f) for f in files])
    assert sorted(log["_mlkit_request_id"]) == sorted(ids)
    worker_pids = {p.pid for p in procs}
    assert {int(f.stem.rsplit("-", 1)[1]) for f in files} <= worker_pids


# -- the command line in the foreground ---------------------------------------------------
@pytest.mark.slow
def test_cli_serves_in_the_foreground_until_ctrl_c(demo, mlkit_home):
    import socket

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLKIT_HOME": str(mlkit_home),
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlkit.cli", "serve", str(demo.local_path), "--port", str(port),
         "--name", "fg"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = proc.stdout.readline()
        while line and "serving" not in line:
            line = proc.stdout.readline()
        assert f"at http://127.0.0.1:{port}" in line, line
        server_pid = next(s.pid for s in _server_list(mlkit_home))
        tree = _tree(server_pid)
        resp = requests.post(f"http://127.0.0.1:{port}/invocations", timeout=60,
                             json={"dataframe_split": demo.X.head(2).to_dict(orient="split")})
        assert resp.json()["predictions"] == demo.model.predict(demo.X.head(2)).tolist()
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "stopped 'fg'" in rest
    _assert_gone(tree)
    assert _server_list(mlkit_home) == []


def _server_list(home):
    import mlkit

    assert os.environ["MLKIT_HOME"] == str(home)
    return list(mlkit.serve.list_servers())


# -- magics ----------------------------------------------------------------------------------
def test_magic_serve_parses_then_calls_start(shell, monkeypatch):
    import mlkit.serve

    calls = []
    monkeypatch.setattr(mlkit.serve, "start", lambda *a, **k: calls.append((a, k)) or "handle")
    out = shell.run_line_magic(
        "mlscale", "serve models:/iris@champion --port 8123 -w 2 --name iris --metrics "
                   "--log-predictions")
    assert out == "handle"
    assert calls == [(("models:/iris@champion",), {
        "port": 8123, "host": "127.0.0.1", "workers": 2, "name": "iris",
        "log_predictions": True, "metrics": True})]


def test_magic_serve_errors_are_usage_errors(shell, mlkit_home):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no server named 'nope' is running"):
        shell.run_line_magic("mlscale", "serve stop nope")
    with pytest.raises(UsageError, match="name the server to stop, or pass all=True"):
        shell.run_line_magic("mlscale", "serve stop")
    with pytest.raises(UsageError, match="takes one model"):
        shell.run_line_magic("mlscale", "serve models:/a@b extra")
    with pytest.raises(UsageError, match="a port is 0..65535"):
        shell.run_line_magic("mlscale", "serve models:/a@b --port 70000")
    with pytest.raises(UsageError, match="does not exist"):
        shell.run_line_magic("mlscale", "serve /no/such/model")


def test_magic_stop_all_with_nothing_running(shell, mlkit_home, capsys):
    assert shell.run_line_magic("mlscale", "serve stop --all") is None
    assert "no servers were running" in capsys.readouterr().out
    assert repr(shell.run_line_magic("mlscale", "serve list")) == (
        "no mlkit scoring servers are running")


def test_cli_stop_unknown_name_fails_cleanly(mlkit_home):
    from click.testing import CliRunner

    from mlkit.cli import cli

    result = CliRunner().invoke(cli, ["serve", "stop", "nope"])
    assert result.exit_code == 1 and "no server named 'nope'" in result.output
    result = CliRunner().invoke(cli, ["serve", "list"])
    assert result.exit_code == 0 and "no mlkit scoring servers are running" in result.output


def test_registry_file_is_json_written_atomically(demo, mlkit_home):
    from mlkit.serve import _running

    _running.add({"name": "a", "pid": 1, "create_time": 0})
    path = _running.running_path()
    assert json.loads(path.read_text())["servers"]["a"]["pid"] == 1
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    _running.remove("a")
    assert json.loads(path.read_text())["servers"] == {}
