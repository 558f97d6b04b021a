"""A tracking server for workers on other hosts: ``mlflow server`` started, recorded, stopped.

When the cluster's workers do not share the client's disk, mlkit's default SQLite store (a file
in the client's mlkit home) means nothing to them: a run opened in a task lands in the worker's
own file, and a model logged on the client has its artifacts on the client's disk only.
:func:`serve_tracking` starts MLflow's own tracking server for them:

- a database backend (SQLite in ``<home>/tracking/``, written by the server process alone) and
  ``--serve-artifacts`` (artifacts travel over HTTP as ``mlflow-artifacts:/`` URIs, kept in
  ``<home>/tracking/artifacts``), so runs, models and batch scoring work from any host;
- bound to the client's address on the route to the scheduler (what the workers reach), with
  ``--allowed-hosts`` listing that address (MLflow refuses Host headers it does not know);
- with MLflow's basic-auth app (``--app-name basic-auth``) whenever it listens beyond loopback:
  an admin user with a generated password, kept with the Flask secret key in
  ``<home>/tracking/credentials.json`` (mode 0600) and reused on the next start (the auth
  database remembers the user);
- recorded in the scoring servers' registry (``mlkit.serve.list_servers()`` lists it as kind
  ``tracking``), in its own process group, so :func:`stop_tracking` (or ``mlkit.serve.stop``)
  leaves no process behind.

While it runs, this process and every worker of the active cluster (a Dask ``WorkerPlugin``:
workers that join later too) have ``MLFLOW_TRACKING_URI`` and ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` pointing at it. Runs logged before into the local SQLite store stay
there (``mlkit.track.tracking_uri()`` says where tracking goes now).

Examples
--------
>>> import mlkit
>>> c = mlkit.cluster.connect("tcp://scheduler:8786")          # doctest: +SKIP
>>> srv = mlkit.track.serve_tracking()                         # doctest: +SKIP
>>> srv.url, srv.auth                                          # doctest: +SKIP
('http://192.0.2.13:41017', True)
>>> mlkit.track.stop_tracking()                                # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlkit import _args, config
from mlkit._fs import atomic_write
from mlkit.exceptions import TrackingArgumentError, TrackingError
from mlkit.serve._server import Server

__all__ = ["TrackingServer", "serve_tracking", "stop_tracking", "tracking_server", "NAME"]

NAME = "tracking"  # its name in the servers' registry
USER = "mlkit"
_ENV_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
# What this process's environment held before serve_tracking pointed it at the server.
_BEFORE: dict[str, str | None] | None = None


def _folder() -> Path:
    return config.home("tracking")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _default_host() -> str:
    """The client's address on the route to the scheduler when the workers are remote."""
    from mlkit.cluster._preflight import is_remote

    if not is_remote():
        return "127.0.0.1"
    return _route_address()


def _check_bind(host: str, port: int) -> None:
    """One clear error for an address this machine cannot listen on, before anything starts."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TrackingError(
            f"host={host!r} is not an address of this machine ({exc.strerror}): pass an IP "
            "address the workers reach (e.g. the one on the route to the scheduler), or "
            "127.0.0.1 for this machine only"
        ) from None
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind(sockaddr)
        except OSError as exc:
            what = (f"port {port} is in use there: pick another or pass port=0"
                    if exc.errno == 98 else
                    "pass an address of this machine's interfaces, or 127.0.0.1")
            raise TrackingError(
                f"cannot start the tracking server on {host}:{port}: {exc.strerror}; {what}"
            ) from None


def _check_args(host: Any, port: Any, auth: Any, timeout: Any) -> None:
    bad = TrackingArgumentError
    if host is not None and (not isinstance(host, str) or not host.strip()):
        raise _args.fail("host", host, "an address such as '127.0.0.1'", error=bad)
    _args.int_in("port", port, 0, 65535, error=bad, what_to_do="0 picks a free one")
    if auth is not None and not isinstance(auth, bool):
        raise _args.fail("auth", auth, "True, False or None (automatic)", error=bad)
    _args.positive_number("timeout", timeout, unit="seconds", error=bad)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never readable in between)."""
    atomic_write(path, text, mode=0o600)


def credentials() -> dict[str, str]:
    """The server's admin username and password (made on first use, kept 0600 in the home).

    Examples
    --------
    >>> sorted(credentials())                 # doctest: +SKIP
    ['password', 'secret_key', 'username']
    """
    folder = _folder()
    path = folder / "credentials.json"
    with contextlib.suppress(OSError, ValueError):
        creds = json.loads(path.read_text())
        if {"username", "password", "secret_key"} <= set(creds):
            os.chmod(path, 0o600)
            return creds
    # New credentials: an auth database made with older ones would refuse them (MLflow creates
    # the admin user only once), so it goes too.
    (folder / "auth.db").unlink(missing_ok=True)
    creds = {"username": USER, "password": secrets.token_urlsafe(24),
             "secret_key": secrets.token_hex(32)}
    _write_private(path, json.dumps(creds))
    return creds


def _auth_env(folder: Path, creds: dict[str, str]) -> dict[str, str]:
    ini = folder / "basic_auth.ini"
    # Only the admin exists; other users (made by an admin) see nothing until granted.
    _write_private(ini, "\n".join([
        "[mlflow]",
        "default_permission = NO_PERMISSIONS",
        f"database_uri = sqlite:///{folder / 'auth.db'}",
        f"admin_username = {creds['username']}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "",
    ]))
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_PASSWORD": creds["password"],  # bootstraps the admin user once
        "MLFLOW_FLASK_SERVER_SECRET_KEY": creds["secret_key"],
    }


def _server_env(extra: dict[str, str]) -> dict[str, str]:
    env = os.environ.copy()
    for key in _ENV_KEYS:
        env.pop(key, None)
    bindir = str(Path(sys.executable).parent)  # `mlflow server` execs uvicorn by name
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    # MLflow's job runner (a dozen huey consumer processes) serves GenAI jobs mlkit never
    # submits; on a small machine it doubles the start-up time.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.update(extra)
    return env


class TrackingServer(Server):
    """Handle on mlkit's tracking server (see :func:`serve_tracking`).

    Attributes
    ----------
    url : str
        ``http://HOST:PORT``, what ``MLFLOW_TRACKING_URI`` is set to while it runs.
    auth : bool
        Whether MLflow's basic-auth app guards it (always, beyond loopback).
    username : str or None
        The admin user (its password is in ``<home>/tracking/credentials.json``).

    Examples
    --------
    >>> srv = mlkit.track.serve_tracking()    # doctest: +SKIP
    >>> srv.ping(), srv.auth                  # doctest: +SKIP
    (True, False)
    """

    @property
    def auth(self) -> bool:
        return bool(self._entry.get("auth"))

    @property
    def username(self) -> str | None:
        return self._entry.get("username")

    def ping(self, timeout: float = 2.0) -> bool:
        """True if the server's ``/health`` answers 200 (no credentials needed)."""
        import requests

        try:
            return self._http().get(f"{self.url}/health", timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def predict(self, df: Any, *, timeout: float = 60.0) -> Any:
        raise TrackingError("a tracking server scores nothing: serve a model with "
                            "mlkit.serve.start('models:/...')")

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update({"auth": self.auth, "backend": self._entry.get("backend"),
                    "artifacts": self._entry.get("artifacts"),
                    "allowed_hosts": self._entry.get("allowed_hosts")})
        for key in ("model", "version", "metrics_url", "predictions", "workers"):
            out.pop(key, None)
        return out

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the server, and point this process and the workers back where they were."""
        was_alive = super().stop(timeout)
        _deactivate(self.url)
        return was_alive

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        auth = "basic auth" if self.auth else "no auth"
        return f"<TrackingServer {self.url} ({auth}) pid={self.pid} {state}>"


def tracking_server() -> TrackingServer | None:
    """mlkit's running tracking server for this mlkit home, or None.

    Examples
    --------
    >>> mlkit.track.tracking_server() is None      # doctest: +SKIP
    True
    """
    from mlkit.serve import _running

    entry = _running.read().get(NAME)
    if entry is None or entry.get("kind") != "tracking":
        return None
    return TrackingServer(entry)


def serve_tracking(
    host: str | None = None,
    port: int = 0,
    *,
    auth: bool | None = None,
    timeout: float = 600.0,
) -> TrackingServer:
    """Start (or find again) an MLflow tracking server every worker reaches, and use it.

    Parameters
    ----------
    host : str, optional
        Address to listen on. Default: the client's address on the route to the scheduler when
        the active cluster's workers do not share this machine's disk (the connect preflight
        says so), else ``127.0.0.1``.
    port : int
        Port; 0 picks a free one.
    auth : bool, optional
        MLflow's basic-auth app. Default: off on loopback, on for any other address (where it
        cannot be turned off: a server beyond loopback holds every run and model).
    timeout : float
        Seconds to wait for the server's REST API to answer (it bounds a hang only: a server
        that exits fails at once; MLflow's server takes seconds to start, minutes on a busy
        machine).

    Returns
    -------
    TrackingServer
        ``.url``, ``.auth``, ``.status()``, ``.logs()``, ``.stop()``.

    Raises
    ------
    TrackingError
        ``MLFLOW_TRACKING_URI`` already names another store (tracking goes there: unset it to
        let mlkit start a server), an address or port this machine cannot listen on, or a
        server that did not answer in time (with its log's last lines).

    Examples
    --------
    >>> srv = mlkit.track.serve_tracking()          # doctest: +SKIP
    >>> mlkit.track.tracking_uri() == srv.url       # doctest: +SKIP
    True
    """
    _check_args(host, port, auth, timeout)
    from mlkit._imports import require

    require("mlflow")
    _refuse_other_store()
    host = host.strip() if host is not None else _default_host()
    loopback = _is_loopback(host)
    if auth is None:
        auth = not loopback
    elif not auth and not loopback:
        raise TrackingError(
            f"auth=False on {host}: a tracking server beyond loopback holds every run and model, "
            "so mlkit always guards it with MLflow's basic auth; bind it to 127.0.0.1 to go "
            "without"
        )
    if auth:
        require("flask_wtf", extra="mlflow")  # MLflow's basic-auth app (mlflow[auth])
    running = tracking_server()
    if running is not None:
        same = running._entry.get("host") == host and (not port or running.port == port)
        if same and running.auth == auth and running.ping():
            _activate(running)
            return running
        raise TrackingError(
            f"mlkit's tracking server already runs at {running.url} "
            f"({'basic auth' if running.auth else 'no auth'}): stop it first with "
            "mlkit.track.stop_tracking() to start one on another address"
        )
    _check_bind(host, port)
    entry = _launch_server(host, port, auth, timeout)
    srv = TrackingServer(entry)
    _activate(srv)
    return srv


def _refuse_other_store() -> None:
    from mlkit.track._defaults import default_uri

    current = os.environ.get("MLFLOW_TRACKING_URI")
    if current and current != default_uri():
        running = tracking_server()
        if running is None or running.url != current:
            raise TrackingError(
                f"MLFLOW_TRACKING_URI={current!r} is set: tracking goes there, so mlkit starts "
                "no server of its own; unset it (del os.environ['MLFLOW_TRACKING_URI']) to let "
                "mlkit start one"
            )


def _launch_server(host: str, port: int, auth: bool, timeout: float) -> dict[str, Any]:

    from mlkit.serve import _process

    folder = _folder()
    log_path = folder / "server.log"
    log_path.write_bytes(b"")
    backend = f"sqlite:///{folder / 'mlflow.db'}"
    artifacts = folder / "artifacts"
    artifacts.mkdir(exist_ok=True)
    creds = credentials() if auth else None
    env = _server_env(_auth_env(folder, creds) if creds else {})
    loopback = _is_loopback(host)

    def build(chosen: int) -> tuple[list[str], str, dict[str, Any]]:
        url, allowed = _address(host, chosen)
        cmd = [*_process.mlflow_command(), "server", "--backend-store-uri", backend,
               "--serve-artifacts", "--artifacts-destination", str(artifacts),
               "--host", host, "--port", str(chosen), "--workers", "1",
               "--allowed-hosts", ",".join(allowed)]
        if auth:
            cmd += ["--app-name", "basic-auth"]
        return cmd, url, {
            "name": NAME, "kind": "tracking", "host": host, "port": chosen, "url": url,
            "model": "(tracking)", "uri": backend, "version": None, "auth": auth,
            "username": creds["username"] if creds else None, "backend": backend,
            "artifacts": str(artifacts), "allowed_hosts": allowed, "log": str(log_path),
            "loopback": loopback,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "home": str(config.home_path()),
        }

    def error(why: str, proc: Any, url: str, tail: str) -> TrackingError:
        reason = (f"it exited with code {proc.returncode}" if why == "exited"
                  else f"its REST API at {url} did not answer within {timeout:g} s")
        return TrackingError(f"the MLflow tracking server at {url} did not start: {reason}. "
                             f"Last lines of its log ({log_path}):\n{tail}")

    return _process.start(build, host=host, port=port, env=env, log_path=log_path, cwd=folder,
                          deadline=time.monotonic() + timeout, error=error,
                          ready=lambda proc, url, deadline: _wait_ready(proc, url, deadline,
                                                                        creds))


def _address(host: str, port: int) -> tuple[str, list[str]]:
    """The URL others use and the Host headers the server accepts (``--allowed-hosts``)."""
    names = [host]
    if host in ("0.0.0.0", "::"):  # every interface: advertise the one the workers reach
        names = [_route_address(), socket.gethostname()]
    elif _is_loopback(host):
        names += ["localhost"]
    shown = [f"[{n}]" if ":" in n else n for n in names]
    allowed = [h for n in shown for h in (n, f"{n}:{port}")]
    return f"http://{shown[0]}:{port}", allowed


def _route_address() -> str:
    from mlkit.cluster._core import current

    c = current()
    if c is not None:
        from distributed.utils import get_ip

        host, _, port = c.address.split("://", 1)[-1].rpartition(":")
        return get_ip(host.strip("[]"), int(port))
    return socket.gethostbyname(socket.gethostname())


def _wait_ready(proc: Any, url: str, deadline: float, creds: dict[str, str] | None
                ) -> str | None:
    """None once the REST API answers (with the credentials); else "exited" or "timeout"."""
    import requests

    session = requests.Session()
    session.trust_env = False  # the client's own address: never through an HTTP proxy
    if creds:
        session.auth = (creds["username"], creds["password"])
    probe = f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    try:
        while True:
            if proc.poll() is not None:
                return "exited"
            with contextlib.suppress(requests.RequestException):
                if session.get(probe, timeout=5).status_code == 200:
                    return None
            if time.monotonic() > deadline:
                return "timeout"
            time.sleep(0.25)
    finally:
        session.close()


def _client_env(srv: Any) -> dict[str, str]:
    env = {"MLFLOW_TRACKING_URI": srv.url}
    if srv.auth:
        creds = credentials()
        env["MLFLOW_TRACKING_USERNAME"] = creds["username"]
        env["MLFLOW_TRACKING_PASSWORD"] = creds["password"]
    return env


def _activate(srv: Any) -> None:
    """Point this process, and every worker of the active cluster, at the server."""
    global _BEFORE
    env = _client_env(srv)
    if _BEFORE is None:
        _BEFORE = {k: os.environ.get(k) for k in _ENV_KEYS}
    for key in _ENV_KEYS:
        os.environ.pop(key, None)
    os.environ.update(env)
    _set_mlflow_uri(srv.url)
    from mlkit.cluster._core import current

    c = current()
    if c is not None:
        ship_to_workers(c.client, env)


def ship_to_workers(client: Any, env: dict[str, str] | None = None) -> None:
    """Register the plugin that sets the tracking environment on ``client``'s workers."""
    if env is None:
        srv = tracking_server()
        if srv is None or os.environ.get("MLFLOW_TRACKING_URI") != srv.url:
            return
        env = _client_env(srv)
    from mlkit.track._plugin import NAME as PLUGIN
    from mlkit.track._plugin import TrackingEnv

    with contextlib.suppress(Exception):  # none registered yet
        client.unregister_worker_plugin(PLUGIN)
    client.register_plugin(TrackingEnv(env), name=PLUGIN)


def _set_mlflow_uri(uri: str | None) -> None:
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        mlflow.set_tracking_uri(uri)  # also sets (or, for None, unsets) MLFLOW_TRACKING_URI


def _deactivate(url: str) -> None:
    global _BEFORE
    if os.environ.get("MLFLOW_TRACKING_URI") == url:
        before = _BEFORE or {}
        for key in _ENV_KEYS:
            value = before.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _set_mlflow_uri(before.get("MLFLOW_TRACKING_URI"))
        _BEFORE = None
    from mlkit.cluster._core import current

    c = current()
    if c is not None:
        from mlkit.track._plugin import NAME as PLUGIN

        with contextlib.suppress(Exception):  # never registered on this cluster
            c.client.unregister_worker_plugin(PLUGIN)


def stop_tracking(timeout: float = 15.0) -> bool:
    """Stop mlkit's tracking server; False if none was running.

    This process and the workers go back to the store they used before (the local SQLite store
    unless ``MLFLOW_TRACKING_URI`` named another). The server's database and artifacts stay in
    ``<home>/tracking`` for the next :func:`serve_tracking`.

    Examples
    --------
    >>> mlkit.track.stop_tracking()      # doctest: +SKIP
    True
    """
    srv = tracking_server()
    if srv is None:
        return False
    return bool(srv.stop(timeout=timeout))
