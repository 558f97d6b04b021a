"""``serve.start(model, replicas=N, ...)``: a gateway process with N batching replicas behind it.

The gateway (:mod:`mlkit.serve._gateway`) is launched like every mlkit server: in its own
session, recorded in the server registry, its log under ``<home>/servers/<name>/``. It starts
and supervises the replicas itself, so its process group holds everything and ``stop`` ends it
whole. ``gateway=NAME`` adds the model as one more route of a running gateway instead (one port,
several models and versions), through the gateway's loopback admin call.

The handle (:class:`GatewayServer`) is a :class:`~mlkit.serve._server.Server` whose ``url`` is
the route's base, ``http://HOST:PORT/models/NAME/LABEL``: ``url + "/invocations"`` scores,
``url + "/ping"`` says whether a replica is up, and ``.predict(df)`` works as before.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlkit import _args, _net, config
from mlkit._fs import atomic_write
from mlkit.exceptions import ServeArgumentError, ServeError
from mlkit.serve import _process, _running
from mlkit.serve._models import ModelRef, default_name
from mlkit.serve._server import Server, _unique_name

__all__ = ["GatewayServer", "start_gateway", "route_for", "check_gateway_args", "parse_duration",
           "cluster_placement"]

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def route_for(model: Any, ref: ModelRef, name: str) -> tuple[str, list[str], str]:
    """(route name, labels, version) for a model: ``models:/demo@champion`` ->
    ``("demo", ["champion", "1"], "1")``.

    Examples
    --------
    >>> route_for("models:/demo/3", ModelRef("models:/demo/3", "", "3", False, ""), "x")
    ('demo', ['3'], '3')
    """
    text = str(model).strip()
    if text.startswith("models:/") and ref.version is not None:
        body = text[len("models:/"):].strip("/")
        reg, sep, alias = body.partition("@")
        if not sep:
            reg = body.rpartition("/")[0]
        labels = [alias, ref.version] if sep else [ref.version]
        if not sep and body.rpartition("/")[2] != ref.version:  # models:/demo/latest
            labels.insert(0, body.rpartition("/")[2])
        return reg, labels, ref.version
    return name, ["default"], "-"


def parse_duration(value: Any) -> float | None:
    """``"10m"`` -> 600.0, ``"30s"``, ``"1h"``, a number of seconds; None stays None.

    Examples
    --------
    >>> parse_duration("10m"), parse_duration("1.5s"), parse_duration(90), parse_duration(None)
    (600.0, 1.5, 90.0, None)
    """
    import re

    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*", str(value)) \
        if isinstance(value, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ServeError(f"scale_to_zero must be a duration such as '10m', '30s' or '1h' (or "
                         f"seconds as a number), got {value!r}")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


def check_gateway_args(replicas: Any, max_batch_rows: Any, max_wait_ms: Any,
                       max_body_bytes: Any, api_keys: Any, host: str) -> bool:
    """Validate the gateway's arguments; returns whether API keys are required."""
    _args.int_in("replicas", replicas, 1, 64, error=ServeArgumentError)
    _args.positive_int("max_batch_rows", max_batch_rows, error=ServeArgumentError)
    wait_rule = "a number of milliseconds in 0..1000"
    if not isinstance(max_wait_ms, int | float) or isinstance(max_wait_ms, bool) \
            or not 0 <= max_wait_ms <= 1000:
        raise _args.fail("max_wait_ms", max_wait_ms, wait_rule, error=ServeArgumentError)
    _args.integer("max_body_bytes", max_body_bytes, low=1024, error=ServeArgumentError)
    _args.one_of("api_keys", api_keys, [None, True, False], error=ServeArgumentError,
                 what_to_do="None decides by the address the gateway binds")
    if api_keys is False and host not in _LOOPBACK:
        raise ServeError(
            f"a gateway bound to {host!r} is reachable from other machines and must check API "
            "keys: drop api_keys=False (create keys with `mlkit serve keys create NAME`) or "
            "bind 127.0.0.1"
        )
    return bool(api_keys) if api_keys is not None else host not in _LOOPBACK


def cluster_placement(replicas: Any) -> tuple[str, list[str]]:
    """(scheduler address, one worker address per replica) on the active Dask cluster.

    One replica per worker by default; ``replicas=N`` places N round robin over the workers.

    Examples
    --------
    >>> cluster_placement(None)                   # doctest: +SKIP
    ('tcp://127.0.0.1:8786', ['tcp://127.0.0.1:40111', 'tcp://127.0.0.1:40222'])
    """
    from mlkit.cluster import get_client
    from mlkit.exceptions import NoClusterError

    if replicas is not None:
        _args.int_in("replicas", replicas, 1, 64, error=ServeArgumentError,
                     what_to_do="or None: one per worker")
    try:
        client = get_client()
    except NoClusterError:
        raise ServeError("on='cluster' needs a running Dask cluster: start one with "
                         "mlkit.cluster.up() (%mlscale up) or join one with "
                         "mlkit.cluster.connect(ADDRESS), or serve with on='local'") from None
    workers = sorted(client.scheduler_info(n_workers=-1).get("workers", {}))
    if not workers:
        raise ServeError(f"the cluster at {client.scheduler.address} has no workers: scale it "
                         "up (mlkit.cluster.scale(N)) before serving on it")
    n = len(workers) if replicas is None else replicas
    return str(client.scheduler.address), [workers[i % len(workers)] for i in range(n)]


class GatewayServer(Server):
    """A route of an mlkit gateway (see the module docstring).

    Examples
    --------
    >>> srv = mlkit.serve.start("models:/iris@champion", replicas=2)   # doctest: +SKIP
    >>> srv.url                                                      # doctest: +SKIP
    'http://127.0.0.1:53211/models/iris/champion'
    >>> srv.replicas()                                               # doctest: +SKIP
    """

    @property
    def gateway_url(self) -> str:
        """The gateway's base URL (``/health``, ``/ready``, ``/metrics``, ``/models``)."""
        return str(self._entry["gateway_url"])

    @property
    def metrics_url(self) -> str | None:
        return f"{self.gateway_url}/metrics"

    def _admin_token(self) -> str:
        return Path(self._entry["admin_token_file"]).read_text().strip()

    def replicas(self) -> list[dict[str, Any]]:
        """This route's replicas: index, URL, pid, healthy, in-flight requests, restarts.

        Examples
        --------
        >>> [r["healthy"] for r in srv.replicas()]      # doctest: +SKIP
        [True, True]
        """
        data = self._http().get(f"{self.gateway_url}/admin/routes?describe=1", timeout=5,
                                headers={"x-mlkit-admin": self._admin_token()}).json()
        for r in data.get("routes", []):
            if r["name"] == self._entry["route_name"] and \
                    r["labels"][0] == self._entry["route_labels"][0]:
                return list(r["replicas"])
        return []

    def split(self, challenger: Server | str | None, weight: float = 0.1,
              key: str | None = None, shadow: bool = False) -> dict[str, Any] | None:
        """Send a share of this route's traffic to another route of the same gateway.

        Parameters
        ----------
        challenger : GatewayServer or str or None
            The challenger's handle (``serve.start(..., gateway=NAME)``) or its route
            (``"demo/2"``); None removes the split.
        weight : float
            Share of requests (0..1) the challenger answers.
        key : str, optional
            Sticky routing: ``"header:x-user-id"`` or ``"column:user_id"`` (first row); the same
            key always reaches the same model. Without a key requests are assigned at random.
        shadow : bool
            The champion answers everything; the challenger gets copies and both answers are
            appended to ``shadow.jsonl`` in the gateway's folder, never returned.

        Examples
        --------
        >>> champion.split(challenger, weight=0.2, key="header:x-user-id")   # doctest: +SKIP
        >>> champion.split(challenger, shadow=True)                          # doctest: +SKIP
        >>> champion.split(None)                                              # doctest: +SKIP
        """
        if challenger is None:
            target = None
        elif isinstance(challenger, GatewayServer):
            if challenger.gateway_url != self.gateway_url:
                raise ServeError(f"{challenger.name!r} is served by another gateway "
                                 f"({challenger.gateway_url}); add it with gateway=...")
            target = f"{challenger._entry['route_name']}/{challenger._entry['route_labels'][0]}"
        else:
            target = str(challenger).strip("/").removeprefix("models/")
        if not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ServeError(f"weight must be a number in 0..1, got {weight!r}")
        log_path = Path(self._entry["log"]).with_name("shadow.jsonl")
        body = {"name": self._entry["route_name"], "label": self._entry["route_labels"][0],
                "challenger": target, "weight": weight, "key": key, "shadow": shadow,
                "log_path": str(log_path)}
        resp = self._http().post(f"{self.gateway_url}/admin/split", data=json.dumps(body),
                                 headers={"x-mlkit-admin": self._admin_token()}, timeout=30)
        if resp.status_code != 200:
            raise ServeError(f"cannot set the split: {resp.json().get('message', resp.text)}")
        return resp.json()["split"]

    def monitor(self) -> Any:
        """A :class:`~mlkit.serve._live.ServeMonitor`: ``.poll()`` gives the route's replicas,
        req/s, p50 / p99, batch size and errors (what the serve widget draws).

        Examples
        --------
        >>> print(srv.monitor().poll())     # doctest: +SKIP
        """
        from mlkit.serve._live import ServeMonitor

        return ServeMonitor(self)

    def widget(self, interval: float = 1.0) -> Any:
        """The live serve widget of this route (one per handle; see :mod:`mlkit.widgets.serve`).

        Examples
        --------
        >>> srv.widget()        # doctest: +SKIP
        """
        if getattr(self, "_widget", None) is None:
            from mlkit._display import widget

            self._widget = widget(self, interval=interval)  # mlkit._display.WIDGETS names it
        return self._widget

    def refresh(self) -> list[dict[str, Any]]:
        """Check now whether the aliases this gateway serves have moved, and follow them.

        The gateway also checks by itself every few seconds; after ``mlkit.track.promote``
        this makes the move immediate. Each promotion starts the new version's replicas, swaps
        the route once they answer and drains the old ones: no request is dropped.

        Returns
        -------
        list of dict
            One ``{"name", "alias", "from", "to", "seconds"}`` per route moved.

        Examples
        --------
        >>> mlkit.track.promote("iris", 4)           # doctest: +SKIP
        >>> srv.refresh()                            # doctest: +SKIP
        [{'name': 'iris', 'alias': 'champion', 'from': '3', 'to': '4', 'seconds': 6.1}]
        """
        resp = self._http().post(f"{self.gateway_url}/admin/refresh", timeout=900,
                                 headers={"x-mlkit-admin": self._admin_token()})
        if resp.status_code != 200:
            raise ServeError(f"the gateway refused the refresh: {resp.text[:500]}")
        return list(resp.json()["promoted"])

    @property
    def shadow_log(self) -> Path:
        """``shadow.jsonl``: one line per shadowed request, both answers side by side."""
        return Path(self._entry["log"]).with_name("shadow.jsonl")

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["gateway_url"] = self.gateway_url
        out["route"] = self._entry.get("route")
        out["auth"] = bool(self._entry.get("auth"))
        try:
            out["replicas"] = self.replicas()
        except Exception:  # noqa: BLE001 - status of a gateway that is going away
            out["replicas"] = []
        return out

    def stop(self, timeout: float = 15.0) -> bool:
        was_alive = self.alive()
        home = self._entry.get("home")
        if self._entry.get("kind") == "route":
            if was_alive:
                try:
                    labels = self._entry["route_labels"]
                    self._http().delete(
                        f"{self.gateway_url}/admin/routes",
                        params={"name": self._entry["route_name"], "label": labels[0]},
                        headers={"x-mlkit-admin": self._admin_token()}, timeout=timeout)
                except Exception:  # noqa: BLE001 - the gateway may be gone already
                    pass
            _running.remove(self.name, home=home)
            return was_alive
        _process.terminate(self._entry, timeout)
        cluster_routes = [self._entry["route_id"]] if self._entry.get("route_id") else []
        for other, entry in _running.read(prune=False, home=home).items():
            if entry.get("gateway") == self.name or other == self.name:
                if other != self.name and entry.get("route_id"):
                    cluster_routes.append(entry["route_id"])
                _running.remove(other, home=home)
        _cleanup_cluster(cluster_routes)
        if self._session is not None:
            self._session.close()
            self._session = None
        return was_alive


def _spec(model: Any, ref: ModelRef, name: str, model_path: str, replicas: int,
          max_batch_rows: int, max_wait_ms: float, log_dir: Path, timeout: float,
          idle: float | None, placement: tuple[str, list[str]] | None = None,
          tracking_uri: str | None = None) -> dict:
    route_name, labels, version = route_for(model, ref, name)
    spec = {"name": route_name, "labels": labels, "version": version, "model": str(model),
            "model_path": model_path, "replicas": replicas, "max_batch_rows": max_batch_rows,
            "max_wait_ms": float(max_wait_ms), "log_dir": str(log_dir),
            "start_timeout": float(timeout), "scale_to_zero_s": idle,
            "tracking_uri": tracking_uri}
    text = str(model).strip()
    if text.startswith("models:/") and "@" in text and ref.version is not None:
        # an alias route follows its alias (mlkit.serve._promote)
        spec.update({"alias": labels[0], "registered": route_name})
    if placement is not None:
        spec.update({"on": "cluster", "scheduler": placement[0], "placement": placement[1],
                     "route_id": secrets.token_hex(6)})
    return spec


def _cleanup_cluster(route_ids: list[str]) -> None:
    """Belt and braces after a gateway stopped: no replica of its routes left on any worker
    (the gateway stops them itself; this covers a gateway that was SIGKILLed)."""
    if not route_ids:
        return
    from mlkit.cluster import current

    c = current()
    if c is None:
        return
    from mlkit.serve._remote import stop_replicas

    for rid in route_ids:
        try:
            c.client.run(stop_replicas, rid + "-", 5.0)
        except Exception:  # noqa: BLE001 - the cluster may be going away too
            pass


def start_gateway(model: Any, ref: ModelRef, tracking_uri: str, *, port: int, host: str,
                  name: str | None, replicas: int, max_batch_rows: int, max_wait_ms: float,
                  api_keys: bool | None, max_body_bytes: int, gateway: str | None,
                  timeout: float, scale_to_zero: Any = None,
                  placement: tuple[str, list[str]] | None = None) -> GatewayServer:
    """The body of ``serve.start`` when ``replicas`` is given (see its docstring)."""

    from mlkit.serve._keys import keys_path
    from mlkit.serve._server import _model_folder

    auth = check_gateway_args(replicas, max_batch_rows, max_wait_ms, max_body_bytes, api_keys,
                              host)
    idle = parse_duration(scale_to_zero)
    running = _running.read()
    if name is not None and name in running:
        raise ServeError(f"a server named {name!r} is already running at "
                         f"{running[name]['url']}: stop it or choose another name")
    name = name or _unique_name(default_name(model), set(running))
    folder = config.home("servers", name)
    model_path = _model_folder(ref, folder / "model", tracking_uri)
    spec = _spec(model, ref, name, model_path, replicas, max_batch_rows, max_wait_ms, folder,
                 timeout, idle, placement, tracking_uri)
    route = f"/models/{spec['name']}/{spec['labels'][0]}"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")

    if gateway is not None:
        if gateway not in running or running[gateway].get("kind") != "gateway":
            gateways = sorted(k for k, v in running.items() if v.get("kind") == "gateway")
            raise ServeError(f"no gateway named {gateway!r} is running (gateways: "
                             f"{gateways or 'none'}); start one with serve.start(model, "
                             "replicas=N)")
        gw = running[gateway]
        import requests

        token = Path(gw["admin_token_file"]).read_text().strip()
        try:
            resp = requests.post(f"{gw['gateway_url']}/admin/routes", data=json.dumps(spec),
                                 headers={"x-mlkit-admin": token}, timeout=timeout + 10)
        except requests.RequestException as exc:
            raise ServeError(f"gateway {gateway!r} did not answer: {exc}") from None
        if resp.status_code != 200:
            raise ServeError(f"gateway {gateway!r} could not serve {str(model)!r}: "
                             f"{resp.json().get('message', resp.text)}")
        entry = {**{k: gw[k] for k in ("pid", "pgid", "create_time", "start_ticks", "host",
                                       "port", "gateway_url", "admin_token_file", "auth",
                                       "log", "home") if k in gw},
                 "name": name, "kind": "route", "gateway": gateway, "model": str(model),
                 "uri": ref.uri, "version": ref.version, "url": gw["gateway_url"] + route,
                 "route": route, "route_name": spec["name"], "route_labels": spec["labels"],
                 "replicas": replicas, "workers": replicas, "started": now,
                 "tracking_uri": tracking_uri, "on": spec.get("on", "local"),
                 "route_id": spec.get("route_id")}
        _running.add(entry, home=entry["home"])
        return GatewayServer(entry)

    if port and not _net.port_free(host, port):
        raise ServeError(f"port {port} on {host} is in use: pick another or pass port=0")
    log_path = folder / "server.log"
    log_path.write_bytes(b"")
    token_file = folder / "admin-token"
    atomic_write(token_file, secrets.token_urlsafe(32), mode=0o600)  # never readable by others
    env = _process.server_env(tracking_uri)
    from mlkit.serve._gateway import CONFIG_ENV

    def build(chosen: int) -> tuple[list[str], str, dict[str, Any]]:
        env[CONFIG_ENV] = json.dumps({
            "name": name, "host": host, "port": chosen, "auth": auth,
            "keys_path": str(keys_path()), "max_body_bytes": max_body_bytes,
            "admin_token": token_file.read_text().strip(), "routes": [spec],
        })
        base = f"http://{host}:{chosen}"
        return [sys.executable, "-m", "mlkit.serve._gateway"], base + route, {
            "name": name, "host": host, "port": chosen, "url": base + route,
            "gateway_url": base, "route": route, "route_name": spec["name"],
            "route_labels": spec["labels"], "model": str(model), "uri": ref.uri,
            "version": ref.version, "kind": "gateway", "replicas": replicas,
            "workers": replicas, "max_batch_rows": max_batch_rows, "max_wait_ms": max_wait_ms,
            "auth": auth, "metrics": True, "predictions": None, "log": str(log_path),
            "scale_to_zero_s": idle, "on": spec.get("on", "local"),
            "route_id": spec.get("route_id"),
            "admin_token_file": str(token_file), "tracking_uri": tracking_uri,
            "started": now, "home": str(config.home_path()),
        }

    def error(why: str, proc: Any, url: str, tail: str) -> ServeError:
        reason = (f"it exited with code {proc.returncode}" if why == "exited"
                  else f"it did not answer {url}/ping within {timeout:g} s")
        return ServeError(f"the gateway for {str(model)!r} did not start: {reason}. Last lines "
                          f"of its log ({log_path}):\n{tail}\n(replica logs: {folder})")

    return GatewayServer(_process.start(build, host=host, port=port, env=env,
                                        log_path=log_path, cwd=folder,
                                        deadline=time.monotonic() + timeout, error=error))
