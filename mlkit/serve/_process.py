"""The processes behind mlkit's servers: launch in a session of their own, record, wait for
``/ping``, retry a lost port race, stop a whole process group (free ports come from
:mod:`mlkit._net`).

Shared by the scoring servers (:mod:`mlkit.serve._server`), the cluster deployments
(:mod:`mlkit.serve._deploy`), the Docker check (:mod:`mlkit.serve._docker`) and the tracking
server (:mod:`mlkit.track._server`): one way to start and stop a server process.

Examples
--------
>>> tail("/nonexistent/server.log")
'(no log)'
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlkit import _net
from mlkit.exceptions import ServeError
from mlkit.serve import _running

__all__ = ["PROCS", "tail", "server_env", "mlflow_command", "reap",
           "terminate", "launch", "wait_ready", "start"]

# Popen objects of servers this process started, so stopped ones are reaped (no zombies).
PROCS: dict[int, subprocess.Popen] = {}
_PING_INTERVAL = 0.25


def tail(path: str | Path, lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def server_env(tracking_uri: str) -> dict[str, str]:
    env = os.environ.copy()
    # `mlflow models serve` execs `uvicorn` by name: the venv's bin folder must come first.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["MLFLOW_TRACKING_URI"] = tracking_uri  # so models:/ and runs:/ resolve in the server
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("MLKIT_SERVE_CONFIG", None)
    return env


def mlflow_command() -> list[str]:
    exe = Path(sys.executable).parent / "mlflow"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mlflow"]


def reap(pid: int) -> None:
    proc = PROCS.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def terminate(entry: dict[str, Any], timeout: float) -> None:
    """SIGTERM the server's group (uvicorn stops gracefully, flushing logs), then SIGKILL."""
    import psutil

    members = _running.group_members(entry)
    pgid = int(entry.get("pgid", entry["pid"]))
    if members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        _gone, alive = psutil.wait_procs(members, timeout=timeout)
        if alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(alive, timeout=5)
    reap(int(entry["pid"]))
    left = _running.group_members(entry)
    if left:
        raise ServeError(
            f"server {entry['name']!r}: processes {[p.pid for p in left]} survived SIGKILL"
        )


def launch(cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        log.write(f"=== mlkit: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=str(cwd), start_new_session=True,  # own process group: stop kills it whole
        )
    PROCS[proc.pid] = proc
    return proc


def wait_ready(proc: subprocess.Popen, url: str, deadline: float) -> str | None:
    """None once /ping answers 200; else why not ("exited" or "timeout")."""
    import requests

    session = requests.Session()
    session.trust_env = False
    try:
        while True:
            if proc.poll() is not None:
                return "exited"
            try:
                if session.get(f"{url}/ping", timeout=2).status_code == 200:
                    return None
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                return "timeout"
            time.sleep(_PING_INTERVAL)
    finally:
        session.close()


def start(
    build: Callable[[int], tuple[list[str], str, dict[str, Any]]],
    *,
    host: str,
    port: int,
    env: dict[str, str],
    log_path: Path,
    cwd: Path,
    deadline: float,
    error: Callable[[str, subprocess.Popen, str, str], Exception],
    ready: Callable[[subprocess.Popen, str, float], str | None] = wait_ready,
) -> dict[str, Any]:
    """Launch a server, record it among the running ones, and return its entry once it answers.

    The one start path of the scoring servers, the gateway and the tracking server:
    ``build(port)`` gives the command, the URL ``ready`` probes and the entry to record (the
    process's pid, group and start time are added here). On port 0 a free port is picked, and
    picked again (up to three tries) when another process took it first ("address already in
    use" in the log). Whatever goes wrong, an interrupt included, leaves no process and no
    entry behind; a failure raises ``error(why, proc, url, log_tail)`` ("exited" or "timeout").
    """
    for attempt in range(3):
        chosen = port or _net.free_port(host)
        cmd, url, entry = build(chosen)
        proc = launch(cmd, env, log_path, cwd)
        entry.update(pid=proc.pid, pgid=proc.pid, **_running.identity(proc.pid))
        _running.add(entry, home=entry["home"])
        try:
            why = ready(proc, url, deadline)
        except BaseException:  # an interrupt while waiting: leave nothing behind
            terminate(entry, 5)
            _running.remove(entry["name"], home=entry["home"])
            raise
        if why is None:
            return entry
        terminate(entry, 5)
        _running.remove(entry["name"], home=entry["home"])
        log = tail(log_path)
        if why == "exited" and not port and "address already in use" in log.lower() \
                and attempt < 2:
            continue  # another process took the free port first: pick a new one
        raise error(why, proc, url, log)
    raise AssertionError("unreachable")  # pragma: no cover
