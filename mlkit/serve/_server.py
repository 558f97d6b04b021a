"""Managed scoring-server processes: start, find again, predict, stop.

Two ways to run a model, both MLflow's own scoring app behind uvicorn:

- plain (the default): ``mlflow models serve -m URI --env-manager local -h HOST -p PORT -w N``,
  exactly what a user would type;
- instrumented (``metrics=True`` and/or ``log_predictions=True``): the same app built by
  ``mlflow.pyfunc.scoring_server.init`` inside :mod:`mlkit.serve._app`, wrapped with mlkit's
  ASGI middleware (Prometheus ``/metrics``, the prediction log, cleaned error bodies), started as
  ``python -m uvicorn --factory mlkit.serve._app:create_app``. MLflow's CLI offers no hook for
  either feature.

Each server runs in its own session (``start_new_session``): its process group holds the MLflow
CLI, uvicorn and uvicorn's workers, so ``stop`` signals the whole group and leaves nothing behind.
Servers are recorded in ``<home>/servers/servers.json`` (see :mod:`mlkit.serve._running`) and
log to ``<home>/servers/<name>/server.log``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlkit import _args, _net, config
from mlkit.exceptions import ServeArgumentError, ServeError
from mlkit.serve import _process, _running
from mlkit.serve._models import NAME_RE, ModelRef, default_name, resolve

__all__ = ["Server", "ServerList", "start", "stop", "list_servers", "get"]

class Server:
    """Handle on a running scoring server (returned by :func:`start`, :func:`get`).

    Attributes
    ----------
    name, url, model : str
        Registry name, base URL (``http://127.0.0.1:PORT``) and the model as given.
    pid : int
        Process id of the server's process-group leader.

    Examples
    --------
    >>> srv = mlkit.serve.start("models:/iris@champion")     # doctest: +SKIP
    >>> srv.predict(df.head())                                # doctest: +SKIP
    >>> srv.stop()                                            # doctest: +SKIP
    """

    def __init__(self, entry: dict[str, Any]) -> None:
        self._entry = dict(entry)
        self._session: Any = None

    # -- attributes --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self._entry["name"])

    @property
    def url(self) -> str:
        return str(self._entry["url"])

    @property
    def port(self) -> int:
        return int(self._entry["port"])

    @property
    def pid(self) -> int:
        return int(self._entry["pid"])

    @property
    def model(self) -> str:
        return str(self._entry["model"])

    @property
    def log_path(self) -> Path:
        """The server's stdout/stderr log."""
        return Path(self._entry["log"])

    @property
    def metrics_url(self) -> str | None:
        """``URL/metrics`` (Prometheus text) when started with ``metrics=True``, else None."""
        return f"{self.url}/metrics" if self._entry.get("metrics") else None

    @property
    def predictions_path(self) -> Path | None:
        """Folder of the prediction log when started with ``log_predictions=True``, else None."""
        p = self._entry.get("predictions")
        return Path(p) if p else None

    def to_dict(self) -> dict[str, Any]:
        """The registry entry (JSON-friendly).

        Examples
        --------
        >>> srv.to_dict()["port"]      # doctest: +SKIP
        53211
        """
        return dict(self._entry)

    # -- HTTP --------------------------------------------------------------------------
    def _http(self) -> Any:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.trust_env = False  # loopback: never through an HTTP proxy
        return self._session

    def ping(self, timeout: float = 2.0) -> bool:
        """True if ``/ping`` answers 200.

        Examples
        --------
        >>> srv.ping()      # doctest: +SKIP
        True
        """
        import requests

        try:
            return self._http().get(f"{self.url}/ping", timeout=timeout).status_code == 200
        except requests.RequestException:
            return False

    def predict(self, df: Any, *, timeout: float = 60.0) -> Any:
        """Score ``df`` through the REST API (``POST /invocations``).

        Parameters
        ----------
        df : pandas.DataFrame (or records / dict of columns convertible to one)
            Raw feature columns, as the model's signature names them.
        timeout : float
            Seconds to wait for the answer.

        Returns
        -------
        pandas.Series named ``prediction`` (index of ``df``), or a DataFrame for multi-output
        models.

        Raises
        ------
        ServeError
            The server rejected the request (the message is the server's) or is unreachable.

        Examples
        --------
        >>> srv.predict(pd.DataFrame({"f0": [0.1], "f1": [1.2]}))   # doctest: +SKIP
        """
        import pandas as pd
        import requests
        from mlflow.utils.proto_json_utils import dump_input_data  # MLflow's own request encoder

        if not isinstance(df, pd.DataFrame):
            if not isinstance(df, (list, dict)):
                raise ServeError(
                    f"predict expects a pandas DataFrame of raw feature columns, got {type(df)!r}"
                )
            df = pd.DataFrame(df)
        try:
            resp = self._http().post(
                f"{self.url}/invocations",
                data=dump_input_data(df),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise ServeError(
                f"server {self.name!r} at {self.url} is not reachable ({type(exc).__name__}); "
                "check mlkit.serve.list_servers() and its log: " + str(self.log_path)
            ) from None
        if resp.status_code != 200:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise ServeError(
                f"server {self.name!r} rejected the request (HTTP {resp.status_code}): "
                f"{str(message)[:2000]}"
            )
        return _predictions(resp.json(), df.index)

    # -- lifecycle ---------------------------------------------------------------------
    def alive(self) -> bool:
        """True while the server's processes run (whether or not it answers yet).

        Examples
        --------
        >>> srv.alive()     # doctest: +SKIP
        True
        """
        return bool(_running.group_members(self._entry))

    def status(self) -> dict[str, Any]:
        """Name, URL, model, pid, whether it runs and answers /ping, uptime and its files.

        Examples
        --------
        >>> srv.status()["ready"]      # doctest: +SKIP
        True
        """
        alive = self.alive()
        started = datetime.fromisoformat(self._entry["started"])
        return {
            "name": self.name,
            "url": self.url,
            "model": self.model,
            "version": self._entry.get("version"),
            "kind": self._entry.get("kind"),
            "pid": self.pid,
            "workers": self._entry.get("workers"),
            "alive": alive,
            "ready": alive and self.ping(),
            "uptime_s": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
            "metrics_url": self.metrics_url,
            "predictions": str(self.predictions_path) if self.predictions_path else None,
            "log": str(self.log_path),
        }

    def logs(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log (uvicorn's, plus mlkit's tracebacks).

        Examples
        --------
        >>> print(srv.logs(5))      # doctest: +SKIP
        """
        return _process.tail(self.log_path, lines)

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the server and every process it started; False if it was not running.

        Examples
        --------
        >>> srv.stop()     # doctest: +SKIP
        True
        """
        was_alive = self.alive()
        _process.terminate(self._entry, timeout)
        _running.remove(self.name, home=self._entry.get("home"))
        if self._session is not None:
            self._session.close()
            self._session = None
        return was_alive

    def __repr__(self) -> str:
        state = "running" if self.alive() else "stopped"
        return f"<Server {self.name!r} {self.url} model={self.model!r} pid={self.pid} {state}>"


def _predictions(payload: Any, index: Any) -> Any:
    import pandas as pd

    preds = payload.get("predictions", payload) if isinstance(payload, dict) else payload
    if isinstance(preds, dict):
        return pd.DataFrame(preds)
    if not isinstance(preds, list):
        return pd.Series([preds], name="prediction")
    idx = index if len(index) == len(preds) else None
    if preds and all(isinstance(p, dict) for p in preds):
        return pd.DataFrame(preds, index=idx)
    if preds and all(isinstance(p, list) for p in preds):
        width = max(len(p) for p in preds)
        if width == 1:
            return pd.Series([p[0] for p in preds], index=idx, name="prediction")
        return pd.DataFrame(preds, index=idx, columns=[f"prediction_{i}" for i in range(width)])
    return pd.Series(preds, index=idx, name="prediction")


class ServerList(list):
    """The running servers; prints as a table.

    Examples
    --------
    >>> mlkit.serve.list_servers()      # doctest: +SKIP
    NAME           URL                     MODEL                  PID    KIND
    iris-champion  http://127.0.0.1:53211  models:/iris@champion  41234  mlflow
    """

    def __repr__(self) -> str:
        if not self:
            return "no mlkit scoring servers are running"
        rows = [("NAME", "URL", "MODEL", "PID", "KIND")]
        for s in self:
            rows.append((s.name, s.url, s.model, str(s.pid), str(s._entry.get("kind", ""))))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        return "\n".join(line.rstrip() for line in lines)

    __str__ = __repr__

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame: one row per server (name, url, model, pid, kind)."""
        import pandas as pd

        columns = ["name", "url", "model", "pid", "kind"]
        return pd.DataFrame(
            [(s.name, s.url, s.model, s.pid, s._entry.get("kind", "")) for s in self],
            columns=columns,
        )


def list_servers() -> ServerList:
    """Servers started by mlkit that are still running (from any process using this home).

    Examples
    --------
    >>> mlkit.serve.list_servers()      # doctest: +SKIP
    """
    return ServerList(_handle(e) for _, e in sorted(_running.read().items()))


def _handle(entry: dict[str, Any]) -> Server:
    """The right handle class for a registry entry (gateways and their routes have their own)."""
    if entry.get("kind") in ("gateway", "route"):
        from mlkit.serve._deploy import GatewayServer

        return GatewayServer(entry)
    if entry.get("kind") == "tracking":
        from mlkit.track._server import TrackingServer

        return TrackingServer(entry)
    return Server(entry)


def get(name: str) -> Server:
    """The running server called ``name``.

    Examples
    --------
    >>> srv = mlkit.serve.get("iris-champion")      # doctest: +SKIP
    """
    servers = _running.read()
    if name not in servers:
        running = ", ".join(sorted(servers)) or "none"
        raise ServeError(f"no server named {name!r} is running (running: {running})")
    return _handle(servers[name])


def stop(
    server: str | Server | None = None, *, all: bool = False, timeout: float = 15.0  # noqa: A002
) -> list[str]:
    """Stop one server (by name or handle) or, with ``all=True``, every registered server.

    Returns the names of the servers stopped.

    Examples
    --------
    >>> mlkit.serve.stop("iris-champion")     # doctest: +SKIP
    ['iris-champion']
    >>> mlkit.serve.stop(all=True)            # doctest: +SKIP
    """
    if all:
        if server is not None:
            raise ServeError("pass a server name or all=True, not both")
        stopped = []
        for s in list_servers():
            s.stop(timeout=timeout)
            stopped.append(s.name)
        return stopped
    if server is None:
        running = ", ".join(s.name for s in list_servers()) or "none"
        raise ServeError(f"name the server to stop, or pass all=True (running: {running})")
    handle = server if isinstance(server, Server) else get(str(server))
    handle.stop(timeout=timeout)
    return [handle.name]


def _unique_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    i = 2
    while f"{base}-{i}" in taken:
        i += 1
    return f"{base}-{i}"


def _check_args(port: Any, host: Any, workers: Any, name: Any, flush_every: Any,
                flush_seconds: Any, timeout: Any) -> None:
    _args.int_in("port", port, 0, 65535, error=ServeArgumentError, what_to_do="0 picks a free one")
    if not isinstance(host, str) or not host:
        raise _args.fail("host", host, "an address such as '127.0.0.1'", error=ServeArgumentError)
    _args.positive_int("workers", workers, error=ServeArgumentError)
    if name is not None and (not isinstance(name, str) or not NAME_RE.match(name)):
        raise ServeError(
            f"name must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or "
            f"digit), got {name!r}"
        )
    _args.positive_int("flush_every", flush_every, error=ServeArgumentError)
    _args.positive_number("flush_seconds", flush_seconds, unit="seconds", error=ServeArgumentError)
    _args.positive_number("timeout", timeout, unit="seconds", error=ServeArgumentError)


def _model_folder(ref: ModelRef, dst: Path, tracking_uri: str) -> str:
    """A local folder of the model for the instrumented app (downloaded once, here)."""
    from mlkit.serve._models import local_folder

    folder = local_folder(ref)
    if folder is not None:
        return folder  # served in place: the server only reads it
    import mlflow
    from mlflow.exceptions import MlflowException

    shutil.rmtree(dst, ignore_errors=True)
    try:
        # The resolved storage location, not the models:/ URI: MLflow resolves registry URIs
        # with the process-global tracking URI, whatever the user's session set it to.
        return mlflow.artifacts.download_artifacts(
            artifact_uri=ref.location, dst_path=str(dst), tracking_uri=tracking_uri,
        )
    except MlflowException as exc:
        raise ServeError(f"cannot download model {ref.uri!r}: {exc.message}") from None


def start(
    model: Any,
    port: int = 0,
    host: str = "127.0.0.1",
    workers: int = 1,
    name: str | None = None,
    log_predictions: bool = False,
    metrics: bool = False,
    *,
    timeout: float = 180.0,
    flush_every: int = 100,
    flush_seconds: float = 10.0,
    replicas: int | None = None,
    max_batch_rows: int = 64,
    max_wait_ms: float = 5.0,
    api_keys: bool | None = None,
    max_body_bytes: int = 10 * 1024 * 1024,
    gateway: str | None = None,
    scale_to_zero: str | float | None = None,
    on: str = "local",
) -> Server:
    """Serve an MLflow model over REST with MLflow's own scoring server, as a managed process.

    Parameters
    ----------
    model : str or pathlib.Path
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH`` or a local model
        folder. Registry and run URIs resolve against mlkit's tracking store
        (``mlkit.track.tracking_uri()``).
    port : int
        Port to listen on; 0 picks a free one.
    host : str
        Address to bind; loopback by default (nothing outside this machine can reach it).
    workers : int
        uvicorn worker processes.
    name : str, optional
        Registry name (default: from the model, e.g. ``iris-champion``; made unique).
    log_predictions : bool
        Append every scored request with its predictions to the Parquet prediction log in
        ``<home>/predictions/<name>/`` (read by ``mlkit.monitor``).
    metrics : bool
        Serve Prometheus metrics at ``URL/metrics``.
    timeout : float
        Seconds to wait for ``/ping`` before giving up (the server is then killed).
    flush_every, flush_seconds : int, float
        The prediction log writes a file every ``flush_every`` requests or ``flush_seconds``
        seconds, whichever comes first, and at shutdown.
    replicas : int, optional
        Serve through mlkit's gateway (:mod:`mlkit.serve._gateway`) with this many batching
        replica processes (:mod:`mlkit.serve._replica`): concurrent requests are merged into
        one model call, the gateway retries a request on another replica if one dies, and
        serves ``/metrics``, ``/health``, ``/ready``. ``url`` is then the route's base,
        ``http://HOST:PORT/models/NAME/ALIAS``. ``workers``, ``metrics`` and
        ``log_predictions`` do not apply.
    max_batch_rows, max_wait_ms : int, float
        With ``replicas``: rows per model call at most, and the longest wait (ms) for company
        while a replica is loaded (an idle replica never waits).
    api_keys : bool, optional
        With ``replicas``: require API keys (``mlkit serve keys create NAME``). Default: off on
        127.0.0.1, on for any other address (where it cannot be turned off).
    max_body_bytes : int
        With ``replicas``: larger request bodies get HTTP 413.
    gateway : str, optional
        With ``replicas``: add this model as one more route of the running gateway of that
        name (one port for several models and versions).
    scale_to_zero : str or float, optional
        With ``replicas``: stop the replicas after this much idle time (``"10m"``, ``"30s"``,
        seconds); the next request starts them again and is answered (its wait, the cold
        start, is exported as ``mlkit_gateway_cold_start_seconds``).
    on : {"local", "cluster"}
        Where the replicas run. ``"cluster"``: on the active Dask cluster's workers
        (``mlkit.cluster.up`` / ``connect``), one per worker unless ``replicas`` says how many
        (placed round robin), each bound to its worker's host and answering only the gateway
        (a shared secret); the gateway stays on this machine. The model folder is shipped to
        the workers, so they need no access to this machine's tracking store.

    Returns
    -------
    Server
        ``.url``, ``.predict(df)``, ``.status()``, ``.stop()``, ``.name``.

    Raises
    ------
    ServeError
        Bad arguments, a model that cannot be found, a busy port, or a server that did not
        answer ``/ping`` in time (its log's last lines are in the message).

    Examples
    --------
    >>> srv = mlkit.serve.start("models:/iris@champion", metrics=True)   # doctest: +SKIP
    >>> srv.url                                                          # doctest: +SKIP
    'http://127.0.0.1:53211'
    >>> srv.predict(X.head(3))                                           # doctest: +SKIP
    >>> srv.stop()                                                       # doctest: +SKIP
    >>> gw = mlkit.serve.start("models:/iris@champion", replicas=2)     # doctest: +SKIP
    >>> gw.url                                                           # doctest: +SKIP
    'http://127.0.0.1:53212/models/iris/champion'
    """
    if on not in ("local", "cluster"):
        raise ServeError(f"on must be 'local' (replicas on this machine) or 'cluster' (on the "
                         f"Dask cluster's workers), got {on!r}")
    _check_args(port, host, workers, name, flush_every, flush_seconds, timeout)
    from mlkit import track
    from mlkit._imports import require

    require("mlflow", extra="serve")
    if metrics:  # imported by the server process; say which extra installs it, here, at once
        require("prometheus_client", extra="serve")

    tracking_uri = track.tracking_uri()
    ref = resolve(model, tracking_uri)
    placement = None
    if on == "cluster":
        from mlkit.serve._deploy import cluster_placement

        placement = cluster_placement(replicas)
        replicas = len(placement[1])
    if replicas is not None or gateway is not None or scale_to_zero is not None:
        from mlkit.serve._deploy import start_gateway

        require("prometheus_client", extra="serve")
        if metrics or log_predictions or workers != 1:
            raise ServeError("workers, metrics and log_predictions apply to a single server; "
                             "with replicas=N the gateway always serves /metrics")
        return start_gateway(
            model, ref, tracking_uri, port=port, host=host, name=name,
            replicas=1 if replicas is None else replicas, max_batch_rows=max_batch_rows,
            max_wait_ms=max_wait_ms, api_keys=api_keys, max_body_bytes=max_body_bytes,
            gateway=gateway, timeout=timeout, scale_to_zero=scale_to_zero,
            placement=placement,
        )
    if port and not _net.port_free(host, port):
        raise ServeError(f"port {port} on {host} is in use: pick another or pass port=0")

    running = _running.read()
    if name is not None and name in running:
        other = Server(running[name])
        raise ServeError(
            f"a server named {name!r} is already running at {other.url}: stop it with "
            f"mlkit.serve.stop({name!r}) or choose another name"
        )
    name = name or _unique_name(default_name(model), set(running))

    folder = config.home("servers", name)
    log_path = folder / "server.log"
    log_path.write_bytes(b"")
    env = _process.server_env(tracking_uri)
    instrumented = bool(metrics or log_predictions)
    predictions = str(config.home("predictions", name)) if log_predictions else None
    if instrumented:
        model_path = _model_folder(ref, folder / "model", tracking_uri)
        from mlkit.serve._app import CONFIG_ENV

        env[CONFIG_ENV] = json.dumps({
            "model_path": model_path, "metrics": bool(metrics), "log_dir": predictions,
            "flush_every": flush_every, "flush_seconds": float(flush_seconds), "name": name,
        })
        if workers > 1 and metrics:
            prom = folder / "prometheus"
            shutil.rmtree(prom, ignore_errors=True)
            prom.mkdir(parents=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)

    kind = "mlkit" if instrumented else "mlflow"

    def build(chosen: int) -> tuple[list[str], str, dict[str, Any]]:
        if instrumented:
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "mlkit.serve._app:create_app",
                   "--host", host, "--port", str(chosen), "--workers", str(workers),
                   "--timeout-graceful-shutdown", "10"]
        else:
            cmd = [*_process.mlflow_command(), "models", "serve", "-m", ref.uri,
                   "--env-manager", "local", "-h", host, "-p", str(chosen), "-w", str(workers)]
        url = f"http://{host}:{chosen}"
        return cmd, url, {
            "name": name, "host": host, "port": chosen, "url": url, "model": str(model),
            "uri": ref.uri, "version": ref.version, "kind": kind, "workers": workers,
            "metrics": bool(metrics), "predictions": predictions, "log": str(log_path),
            "tracking_uri": tracking_uri,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "home": str(config.home_path()),
        }

    def error(why: str, proc: Any, url: str, tail: str) -> ServeError:
        reason = (f"it exited with code {proc.returncode}" if why == "exited"
                  else f"it did not answer {url}/ping within {timeout:g} s")
        return ServeError(f"the scoring server for {str(model)!r} did not start: {reason}. "
                          f"Last lines of its log ({log_path}):\n{tail}")

    return Server(_process.start(build, host=host, port=port, env=env, log_path=log_path,
                                 cwd=folder, deadline=time.monotonic() + timeout, error=error))
