"""The serving gateway: one port in front of every served model's replicas (ASGI on uvicorn).

Started by ``serve.start(model, replicas=N)`` as ``python -m mlkit.serve._gateway`` (settings in
``MLKIT_GATEWAY_CONFIG``, JSON); it starts and supervises the replicas itself
(:mod:`mlkit.serve._pool`), so the gateway and its replicas form one process group that
``serve.stop`` ends whole.

Routes
------
``POST /models/NAME/LABEL/invocations``   LABEL is an alias (``champion``) or a version (``3``)
``POST /models/NAME/invocations``         the first route served under NAME
``GET  /models/NAME[/LABEL]/ping``        200 while the route has a healthy replica, else 503
                                          (like /health and /ready: no API key needed)
``GET  /models``                          the routes, their replicas and health (JSON)
``GET  /health``                          200 while the gateway runs (liveness)
``GET  /ready``                           200 once every route has a healthy replica, else 503
``GET  /metrics``                         Prometheus text (:mod:`mlkit.serve._gwmetrics`)
``POST /admin/routes``, ``DELETE /admin/routes?name=&label=``   add / remove a route (loopback
                                          callers holding the gateway's admin token only)
``POST /admin/refresh``                   check every alias route now (else every
                                          ``alias_poll_s``): a moved alias is promoted with no
                                          dropped request (:mod:`mlkit.serve._promote`)

The front door checks, in this order and before a replica sees anything: a key in the query
string (refused: URLs end up in logs), the API key (``Authorization: Bearer KEY`` or
``X-API-Key``; 401 missing or unknown, 403 revoked), the key's rate limit (429 with
``Retry-After``), the body size (413, from ``Content-Length`` before reading and again while
reading), a missing ``Content-Type`` (415: MLflow's own server answers 500 there), a body that
does not arrive within ``body_timeout`` (408). Every answer carries ``x-request-id``.

Built on uvicorn (the server ``mlflow models serve`` runs), a lean keep-alive client to the
replicas (:mod:`mlkit.serve._forward`, on httptools, uvicorn's own parser) and
prometheus_client; the ASGI callable is plain (no framework): it adds nothing per request that
the gateway does not need. Why not a general HTTP client for forwarding: the gateway forwards
every request, and on a 2-core machine the client's per-request work was the gateway's cost
(httpx first: the ceiling at 8 clients, most py-spy samples inside httpx/httpcore with the
replicas half idle; then aiohttp: 0.6-0.8 ms of the gateway's CPU per request at one client,
against 0.3 ms for the lean client). The pools' health checks go over the same connections.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from mlkit.serve._forward import ForwardError, within
from mlkit.serve._middleware import request_id

__all__ = ["Gateway", "CONFIG_ENV", "main"]

CONFIG_ENV = "MLKIT_GATEWAY_CONFIG"
_ROUTE_RE = re.compile(r"^/models/([^/]+)(?:/([^/]+))?/(invocations|ping)$")
_QUERY_KEY_NAMES = {"api_key", "apikey", "api-key", "key", "token", "access_token", "x-api-key"}
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_PASSED_ON = (b"content-type", b"x-mlkit-batch-rows", b"x-mlkit-batch-requests",
              b"x-mlkit-queue-depth")


@dataclass
class Route:
    """One model version served under ``name`` and ``labels`` (alias and/or version)."""

    name: str
    labels: list[str]
    version: str
    model: str
    pool: Any
    spec: dict[str, Any] = field(default_factory=dict)
    split: Any = None  # a mlkit.serve._split.Split while a challenger is attached
    replaced_by: Any = None  # the Route serving this alias since a promotion (_promote)


def _pairs(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _json(status: int, code: str, message: str, rid: str) -> tuple[int, bytes]:
    return status, json.dumps({"error_code": code, "message": message,
                               "request_id": rid}).encode()


class _TooLarge(Exception):
    pass


class Gateway:
    """The ASGI app (see the module docstring). ``cfg`` is the gateway's JSON settings."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        from mlkit.serve._gwmetrics import GatewayMetrics
        from mlkit.serve._keys import KeyStore
        from mlkit.serve._ratelimit import RateLimiter

        self.cfg = cfg
        self.auth = bool(cfg.get("auth", False))
        self.keys = KeyStore(cfg["keys_path"]) if cfg.get("keys_path") else None
        self.limiter = RateLimiter()
        self.max_body = int(cfg.get("max_body_bytes", 10 * 1024 * 1024))
        self.request_timeout = float(cfg.get("request_timeout", 60.0))
        self.body_timeout = float(cfg.get("body_timeout", 30.0))
        self.admin_token = str(cfg.get("admin_token", ""))
        self.metrics = GatewayMetrics()
        self.routes: dict[tuple[str, str], Route] = {}
        self.defaults: dict[str, Route] = {}
        self._lock = asyncio.Lock()
        self._shadow_tasks: set[asyncio.Task] = set()
        self.watcher: Any = None  # mlkit.serve._promote.AliasWatcher, once started

    # -- routes ------------------------------------------------------------------------
    def _make_pool(self, spec: dict[str, Any]) -> Any:
        """The replicas of a route spec, not started yet: local or on the cluster's workers."""
        from mlkit.serve._pool import Pool

        name = str(spec["name"])
        version = str(spec.get("version") or spec["labels"][0])

        def restarted(rep: Any) -> None:
            self.metrics.restarts.labels(name, version, rep.label).inc()

        idle = spec.get("scale_to_zero_s")
        args = (spec["model_path"], int(spec.get("replicas", 1)),
                int(spec.get("max_batch_rows", 64)), float(spec.get("max_wait_ms", 5.0)))
        common = {"log_dir": spec["log_dir"], "on_restart": restarted,
                  "idle_stop_s": float(idle) if idle is not None else None}
        if spec.get("on") == "cluster":  # replicas on the Dask workers' hosts
            from mlkit.serve._clusterpool import ClusterPool

            pool: Any = ClusterPool(*args, scheduler=spec["scheduler"],
                                    placement=list(spec["placement"]),
                                    route_id=spec.get("route_id"), **common)
        else:
            pool = Pool(*args, **common)
        return pool

    async def add_route(self, spec: dict[str, Any]) -> Route:
        name, labels = str(spec["name"]), [str(x) for x in spec["labels"]]
        taken = [lab for lab in labels if (name, lab) in self.routes]
        if taken:
            raise ValueError(f"/models/{name}/{taken[0]} is served already")
        version = str(spec.get("version") or labels[0])
        route: Route | None = None
        pool = self._make_pool(spec)
        await pool.start(timeout=float(spec.get("start_timeout", 180.0)))
        async with self._lock:
            route = Route(name, labels, version, str(spec.get("model", "")), pool, spec)
            for lab in labels:
                self.routes[(name, lab)] = route
            self.defaults.setdefault(name, route)
        return route

    async def swap_route(self, old: Route, spec: dict[str, Any], pool: Any) -> Route | None:
        """Put a started ``pool`` (a new version) in place of ``old``'s alias, in one step;
        None if ``old`` is no longer served. See :mod:`mlkit.serve._promote`."""
        async with self._lock:
            if self.routes.get((old.name, old.labels[0])) is not old:
                return None
            labels = [lab for lab in map(str, spec["labels"])
                      if self.routes.get((old.name, lab)) in (None, old)]
            new = Route(old.name, labels, str(spec["version"]), str(spec.get("model", "")),
                        pool, spec, split=old.split)
            for lab in old.labels:
                self.routes.pop((old.name, lab), None)
            for lab in labels:
                self.routes[(old.name, lab)] = new
            if self.defaults.get(old.name) is old:
                self.defaults[old.name] = new
            old.replaced_by = new
        return new

    async def remove_route(self, name: str, label: str) -> bool:
        async with self._lock:
            route = self.routes.get((name, label))
            if route is None:
                return False
            for lab in route.labels:
                self.routes.pop((name, lab), None)
            if self.defaults.get(name) is route:
                del self.defaults[name]
                rest = [r for (n, _), r in self.routes.items() if n == name]
                if rest:
                    self.defaults[name] = rest[0]
        await route.pool.stop()
        return True

    def _unique_routes(self) -> list[Route]:
        seen: dict[int, Route] = {}
        for r in self.routes.values():
            seen.setdefault(id(r), r)
        return list(seen.values())

    # -- ASGI --------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: nothing to serve; uvicorn closes the connection
        start = time.perf_counter()
        rid = request_id(scope)
        labels = ["-", "-", "-"]
        status, body, headers = 500, b"", []
        state = {"read": False}

        async def tracked() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                state["read"] = True
            return message

        try:
            status, body, headers = await self._handle(scope, tracked, rid, labels)
            if not state["read"]:
                # answered without reading the body (401, 413 from Content-Length, ...): read
                # and drop it first, so the client gets this answer instead of a reset
                # connection while it is still sending
                await self._drain(tracked, state)
        except Exception as exc:  # a gateway bug must not hide behind a dropped connection
            print(f"mlkit gateway: request {rid} failed: {exc!r}", file=sys.stderr, flush=True)
            status, body = _json(500, "INTERNAL_ERROR", f"gateway error: {type(exc).__name__}",
                                 rid)
            headers = []
        hdrs = [(b"x-request-id", rid.encode()), (b"content-length", str(len(body)).encode())]
        if not any(k == b"content-type" for k, _ in headers):
            hdrs.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": hdrs + headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe(labels[0], labels[1], labels[2], status,
                             time.perf_counter() - start, headers)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.gather(*(self.add_route(r) for r in self.cfg.get("routes", [])))
                except Exception as exc:  # noqa: BLE001 - reported to uvicorn, which exits
                    for r in self._unique_routes():
                        await r.pool.stop()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                from mlkit.serve._promote import AliasWatcher

                self.watcher = AliasWatcher(self, float(self.cfg.get("alias_poll_s", 5.0)))
                self.watcher.start()
                print(f"mlkit gateway: ready, routes {sorted('/'.join(k) for k in self.routes)}",
                      file=sys.stderr, flush=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.watcher is not None:
                    await self.watcher.stop()
                await asyncio.gather(*(r.pool.stop() for r in self._unique_routes()),
                                     return_exceptions=True)
                for r in self._unique_routes():
                    for rep in r.pool.replicas:
                        rep.close_connections()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- the front door ----------------------------------------------------------------
    async def _handle(self, scope: dict[str, Any], receive: Any, rid: str,
                      labels: list[str]) -> tuple[int, bytes, list]:
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if path == "/health":
            return 200, b'{"status": "ok"}', []
        if path == "/ready":
            return self._ready()
        if path.startswith("/admin/"):
            return await self._admin(scope, receive, rid)
        query = scope.get("query_string", b"").decode("latin-1")
        if query and self._query_has_key(query):
            return _json(401 if self.auth else 400, "KEY_IN_URL",
                         "API keys in the URL are refused (URLs end up in logs and histories); "
                         "send it in a header: 'Authorization: Bearer KEY'", rid) + ([],)
        match = _ROUTE_RE.match(path)
        probe = match is not None and match.group(3) == "ping"  # health probes need no key
        # the gateway's own tools (serve widget, status) read /metrics with the admin token
        if self.auth and not probe and not (path == "/metrics" and self._is_admin(scope)):
            refused = self._authenticate(scope, rid)
            if refused is not None:
                return refused
        if path == "/metrics":
            return 200, self.metrics.render(), [
                (b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
        if path == "/models":
            return 200, json.dumps(self._describe()).encode(), []
        if not match:
            return _json(404, "NOT_FOUND", f"no such path {path[:200]!r}: models are served at "
                         "/models/NAME[/ALIAS_OR_VERSION]/invocations (GET /models lists them)",
                         rid) + ([],)
        name, label, action = match.groups()
        route = self.routes.get((name, label)) if label else self.defaults.get(name)
        if route is None:
            served = sorted({f"/models/{n}/{lab}" for n, lab in self.routes})
            return _json(404, "RESOURCE_DOES_NOT_EXIST",
                         f"no model is served at /models/{name}{'/' + label if label else ''}; "
                         f"served: {served or 'none'}", rid) + ([],)
        labels[0], labels[1] = route.name, route.version
        if action == "ping":
            if method not in ("GET", "HEAD"):
                return self._method_not_allowed(rid, "GET")
            return (200, b"\n", []) if route.pool.healthy or route.pool.scaled_to_zero else _json(
                503, "UNAVAILABLE", "no replica is healthy yet", rid) + ([],)
        if method != "POST":
            return self._method_not_allowed(rid, "POST")
        return await self._invoke(scope, receive, rid, route, labels)

    @staticmethod
    def _method_not_allowed(rid: str, allow: str) -> tuple[int, bytes, list]:
        status, body = _json(405, "METHOD_NOT_ALLOWED", f"use {allow} here", rid)
        return status, body, [(b"allow", allow.encode())]

    @staticmethod
    def _query_has_key(query: str) -> bool:
        for k, v in parse_qsl(query, keep_blank_values=True):
            if k.lower() in _QUERY_KEY_NAMES or v.startswith("mlk_"):
                return True
        return "mlk_" in query

    def _authenticate(self, scope: dict[str, Any], rid: str) -> tuple[int, bytes, list] | None:
        key = None
        for k, v in scope.get("headers", ()):
            if k == b"authorization":
                scheme, _, token = v.decode("latin-1").strip().partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    key = token.strip()
            elif k == b"x-api-key" and v.strip():
                key = v.decode("latin-1").strip()
        www = [(b"www-authenticate", b'Bearer realm="mlkit"')]
        if key is None:
            return _json(401, "UNAUTHENTICATED", "this gateway needs an API key: send "
                         "'Authorization: Bearer KEY' (create one with: mlkit serve keys create "
                         "NAME)", rid) + (www,)
        state, key_id, rate = self.keys.check(key) if self.keys else ("unknown", None, None)
        if state == "unknown":
            return _json(401, "UNAUTHENTICATED", "the API key is not valid", rid) + (www,)
        if state == "revoked":
            return _json(403, "PERMISSION_DENIED", f"the API key {key_id} has been revoked",
                         rid) + ([],)
        if rate is not None:
            wait = self.limiter.hit(str(key_id), rate, time.monotonic())
            if wait > 0:
                retry = max(1, math.ceil(wait))
                return _json(429, "RATE_LIMITED", f"rate limit of key {key_id} reached "
                             f"({rate[0]} per {rate[1]:g} s); retry after {retry} s", rid) + (
                    [(b"retry-after", str(retry).encode())],)
        return None

    async def _drain(self, receive: Any, state: dict[str, Any]) -> None:
        limit, size = max(4 * self.max_body, 64 * 1024 * 1024), 0
        deadline = time.monotonic() + self.body_timeout
        while not state["read"] and size <= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                message = await asyncio.wait_for(receive(), left)
            except (asyncio.TimeoutError, TimeoutError):
                return
            size += len(message.get("body", b""))

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_big(self, rid: str) -> tuple[int, bytes, list]:
        return _json(413, "PAYLOAD_TOO_LARGE", f"request bodies are limited to "
                     f"{self.max_body} bytes: send fewer rows per request", rid) + ([],)

    async def _invoke(self, scope: dict[str, Any], receive: Any, rid: str, route: Route,
                      labels: list[str]) -> tuple[int, bytes, list]:
        ctype = length = None
        for k, v in scope.get("headers", ()):
            if k == b"content-type":
                ctype = v
            elif k == b"content-length":
                length = v
        if length is not None:
            try:
                if int(length) > self.max_body:
                    return self._too_big(rid)
            except ValueError:
                return _json(400, "BAD_REQUEST", "Content-Length is not a number", rid) + ([],)
        try:
            body = await within(self._read_body(scope, receive), self.body_timeout)
        except _TooLarge:
            return self._too_big(rid)
        except (asyncio.TimeoutError, TimeoutError):
            return _json(408, "REQUEST_TIMEOUT", f"the request body did not arrive within "
                         f"{self.body_timeout:g} s", rid) + ([],)
        if ctype is None or not ctype.strip():
            return _json(415, "UNSUPPORTED_MEDIA_TYPE", "set Content-Type: application/json "
                         "(or text/csv, application/vnd.apache.parquet)", rid) + ([],)
        split = route.split
        if split is not None:
            other = self.routes.get(tuple(split.challenger.split("/", 1)))
            if other is not None and other is not route:
                return await self._split(route, other, split, scope, body, ctype, rid, labels)
        return await self._forward(route, body, ctype, rid, labels)

    async def _split(self, route: Route, other: Route, split: Any, scope: dict[str, Any],
                     body: bytes, ctype: bytes, rid: str,
                     labels: list[str]) -> tuple[int, bytes, list]:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        key = split.routing_key(headers, body)
        if not split.shadow:
            chosen = other if split.to_challenger(key) else route
            labels[0], labels[1] = chosen.name, chosen.version
            return await self._forward(chosen, body, ctype, rid, labels)
        answer = await self._forward(route, body, ctype, rid, labels)

        async def shadow() -> None:
            try:
                copy = await self._forward(other, body, ctype, rid, ["-", "-", "-"])
                split.log(rid, answer[:2], copy[:2])
            except Exception as exc:  # noqa: BLE001 - the shadow never affects the client
                split.log(rid, answer[:2], None, error=repr(exc))

        task = asyncio.get_running_loop().create_task(shadow())
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)
        return answer

    async def _forward(self, route: Route, body: bytes, ctype: bytes, rid: str,
                       labels: list[str]) -> tuple[int, bytes, list]:
        while route.replaced_by is not None:  # promoted while this request was read
            route = route.replaced_by
        labels[0], labels[1] = route.name, route.version
        pool = route.pool
        waking = pool.wake()
        if waking is not None:  # scaled to zero: this request pays the cold start
            t0 = time.monotonic()
            await asyncio.shield(waking)
            self.metrics.cold_start.labels(route.name, route.version).observe(
                time.monotonic() - t0)
        deadline = time.monotonic() + self.request_timeout
        headers = [(b"content-type", ctype), (b"x-request-id", rid.encode()),
                   *_pairs(pool.headers)]
        failed: set[int] = set()
        while True:
            if route.replaced_by is not None:  # promoted while this request waited or retried
                while route.replaced_by is not None:
                    route = route.replaced_by
                labels[0], labels[1] = route.name, route.version
                pool, failed = route.pool, set()
                headers = [*headers[:2], *_pairs(pool.headers)]
            rep = pool.pick(exclude=frozenset(failed) if len(failed) < len(pool.replicas)
                            else frozenset())
            left = deadline - time.monotonic()
            if rep is None:
                if left <= 0:
                    return _json(503, "UNAVAILABLE", "no healthy replica answered in time",
                                 rid) + ([(b"retry-after", b"1")],)
                await asyncio.sleep(0.02)  # replicas are being restarted by the pool
                continue
            rep.inflight += 1
            try:
                status, raw, content = await rep.connection().post(
                    b"/invocations", body, headers, timeout=max(left, 0.1))
            except (asyncio.TimeoutError, TimeoutError):
                return _json(504, "TIMEOUT", f"the model did not answer within "
                             f"{self.request_timeout:g} s", rid) + ([],)
            except ForwardError:
                # the replica died or refused the connection: the pool restarts it; predictions
                # have no side effects, so the request is safe to send again elsewhere
                pool.mark_down(rep)
                failed.add(rep.index)
                self.metrics.retries.labels(route.name, route.version).inc()
                if time.monotonic() > deadline:
                    return _json(503, "UNAVAILABLE", "no healthy replica answered in time",
                                 rid) + ([(b"retry-after", b"1")],)
                continue
            finally:
                rep.inflight -= 1
            labels[2] = rep.label
            out = [(b"x-mlkit-replica", rep.label.encode()),
                   (b"x-mlkit-route", f"{route.name}/{route.labels[0]}".encode()),
                   (b"x-mlkit-model-version", route.version.encode())]
            for key, value in raw:  # bytes as received (names lower-cased by the parser)
                if key in _PASSED_ON:
                    out.append((key, value))
            return status, content, out

    # -- status ------------------------------------------------------------------------
    async def _admin_split(self, receive: Any, rid: str) -> tuple[int, bytes, list]:
        try:
            spec = json.loads(await self._read_body({}, receive))
        except (ValueError, _TooLarge):
            return _json(400, "BAD_REQUEST", "the split must be a JSON object", rid) + ([],)
        return await _admin_split_impl(self, spec, rid)

    def _describe(self) -> dict[str, Any]:
        out = []
        for r in self._unique_routes():
            out.append({"name": r.name, "labels": r.labels, "version": r.version,
                        "model": r.model, "alias": r.spec.get("alias"),
                        "on": r.spec.get("on", "local"), "replicas": r.pool.describe(),
                        "split": r.split.describe() if r.split else None,
                        "paths": [f"/models/{r.name}/{lab}/invocations" for lab in r.labels]})
            self.metrics.healthy.labels(r.name, r.version).set(r.pool.healthy)
        return {"routes": out}

    def _ready(self) -> tuple[int, bytes, list]:
        routes = self._unique_routes()
        for r in routes:
            self.metrics.healthy.labels(r.name, r.version).set(r.pool.healthy)
        down = [f"{r.name}/{r.labels[0]}" for r in routes
                if not r.pool.healthy and not r.pool.scaled_to_zero]
        if not routes or down:
            return 503, json.dumps({"ready": False, "waiting_for": down}).encode(), []
        return 200, json.dumps({"ready": True}).encode(), []

    def _is_admin(self, scope: dict[str, Any]) -> bool:
        """A loopback caller holding the gateway's admin token."""
        client = (scope.get("client") or ("", 0))[0]
        token = ""
        for k, v in scope.get("headers", ()):
            if k == b"x-mlkit-admin":
                token = v.decode("latin-1")
        return client in _LOOPBACK and bool(self.admin_token) and hmac.compare_digest(
            token, self.admin_token)

    async def _admin(self, scope: dict[str, Any], receive: Any,
                     rid: str) -> tuple[int, bytes, list]:
        if not self._is_admin(scope):
            return _json(403, "PERMISSION_DENIED", "admin calls need the gateway's token, "
                         "from this machine", rid) + ([],)
        if scope.get("path") == "/admin/split":
            return await self._admin_split(receive, rid)
        if scope.get("path") == "/admin/refresh" and scope.get("method") == "POST":
            moved = await self.watcher.refresh() if self.watcher is not None else []
            return 200, json.dumps({"promoted": moved}).encode(), []
        if scope.get("path") != "/admin/routes":
            return _json(404, "NOT_FOUND", "unknown admin path", rid) + ([],)
        method = scope.get("method")
        if method == "GET":
            return 200, json.dumps(self._describe()).encode(), []
        if method == "POST":
            try:
                spec = json.loads(await self._read_body(scope, receive))
                route = await self.add_route(spec)
            except ValueError as exc:
                return _json(409, "RESOURCE_ALREADY_EXISTS", str(exc), rid) + ([],)
            except Exception as exc:  # noqa: BLE001 - the caller shows the replica's log
                return _json(422, "REPLICA_FAILED", str(exc), rid) + ([],)
            return 200, json.dumps({"name": route.name, "labels": route.labels}).encode(), []
        if method == "DELETE":
            q = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            found = await self.remove_route(q.get("name", ""), q.get("label", ""))
            return (200, b'{"removed": true}', []) if found else _json(
                404, "RESOURCE_DOES_NOT_EXIST", "no such route", rid) + ([],)
        return self._method_not_allowed(rid, "GET, POST, DELETE")


async def _admin_split_impl(gw: Gateway, spec: dict[str, Any],
                            rid: str) -> tuple[int, bytes, list]:
    from mlkit.serve._split import Split

    route = gw.routes.get((str(spec.get("name")), str(spec.get("label"))))
    if route is None:
        return _json(404, "RESOURCE_DOES_NOT_EXIST", "no such champion route", rid) + ([],)
    if spec.get("challenger") is None:
        route.split = None
        return 200, b'{"split": null}', []
    target = str(spec["challenger"])
    other = gw.routes.get(tuple(target.split("/", 1)))  # type: ignore[arg-type]
    if other is None or other is route:
        return _json(404, "RESOURCE_DOES_NOT_EXIST", f"the challenger {target!r} is not another "
                     f"route of this gateway (routes: {sorted('/'.join(k) for k in gw.routes)})",
                     rid) + ([],)
    try:
        route.split = Split(target, float(spec.get("weight", 0.1)), spec.get("key"),
                            bool(spec.get("shadow", False)), spec.get("log_path"))
    except (TypeError, ValueError) as exc:
        return _json(400, "INVALID_PARAMETER_VALUE", str(exc), rid) + ([],)
    return 200, json.dumps({"split": route.split.describe()}).encode(), []


def main() -> None:
    """``python -m mlkit.serve._gateway``: serve the gateway described by MLKIT_GATEWAY_CONFIG."""
    import uvicorn

    cfg = json.loads(os.environ[CONFIG_ENV])
    app = Gateway(cfg)
    config = uvicorn.Config(app, host=cfg["host"], port=int(cfg["port"]), lifespan="on",
                            access_log=False, timeout_graceful_shutdown=5,
                            limit_concurrency=int(cfg.get("limit_concurrency", 2048)))
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(3)


if __name__ == "__main__":
    main()
