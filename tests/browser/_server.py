"""A real JupyterLab server for the browser suite: started on 127.0.0.1 with a random token, the
venv's python first on PATH, every Jupyter and mlkit folder inside one temporary directory.

Stopping ends the server by its PID, then every process that is still left in the server's own
session (kernels, and the Dask processes they started), each by its PID: a test that fails
half-way must not leave a kernel or a cluster running on a shared machine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests._wait import wait_for

# The settings a first-time user would not see in CI: no news or update toasts over the page.
_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}

# No network calls from the page or the server (there is no network here, and CI must not wait).
_LAB_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
    }
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab``: its base URL, token, notebook folder and process."""

    root: Path
    url: str
    token: str
    proc: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(repr=False)

    # -- REST ---------------------------------------------------------------------------------
    def api(self, path: str, method: str = "GET", timeout: float = 10.0) -> object:
        req = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernels(self) -> list[dict]:
        return self.api("kernels")  # type: ignore[return-value]

    def sessions(self) -> list[dict]:
        return self.api("sessions")  # type: ignore[return-value]

    def shutdown_kernels_of(self, notebook: str) -> None:
        """Shut down the kernel of every session on ``notebook`` (through the server's REST API)."""
        for s in self.sessions():
            if s.get("path") == notebook:
                self.api(f"sessions/{s['id']}", method="DELETE", timeout=60)

    def lab_url(self, notebook: str) -> str:
        # One workspace per notebook: a page shows only its own notebook, never reopening
        # (and starting kernels for) the tabs an earlier page had open.
        workspace = Path(notebook).stem
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # -- stopping -----------------------------------------------------------------------------
    def stop(self) -> None:
        """End the server by PID (SIGTERM: it shuts its kernels down), then anything left over."""
        sid = self.proc.pid  # start_new_session: the server leads its own session
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in _session_members(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _session_members(sid: int) -> list[int]:
    """PIDs whose session is ``sid`` (processes that called setsid themselves are not found:
    they are reached through the kernel that started them, which stops them on shutdown)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                out.append(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return out


def start_lab(base: Path, timeout: float = 120.0) -> LabServer:
    """Start JupyterLab serving ``base / "notebooks"`` and wait until ``/api/status`` answers."""
    root = base / "notebooks"
    root.mkdir(parents=True, exist_ok=True)
    settings = base / "lab-settings"
    for rel, value in _USER_SETTINGS.items():
        p = settings / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value))
    config = base / "jupyter-config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_lab_config.json").write_text(json.dumps(_LAB_CONFIG))
    port = free_port()
    token = secrets.token_hex(16)
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "MLKIT_HOME": str(base / "mlkit-home"),
        "MLKIT_DASHBOARD": "1",  # the widget's dashboard link is under test
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "lab-workspaces"),
        "IPYTHONDIR": str(base / "ipython"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    env.pop("PYTEST_CURRENT_TEST", None)
    log_path = base / "jupyter-lab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.root_dir={root}",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LabServer(root, f"http://127.0.0.1:{port}", token, proc, log_path, env)

    def answered_or_exited() -> bool:
        # A server that died stops the wait at once (its log says why), not after the ceiling.
        if proc.poll() is not None:
            return True
        return server.api("status", timeout=5) is not None

    try:
        wait_for(
            answered_or_exited,
            timeout=timeout,
            what=f"JupyterLab answering {server.url}/api/status",
        )
    except BaseException:
        server.stop()
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{server.log()[-4000:]}")
    return server
