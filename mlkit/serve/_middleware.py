"""ASGI middleware around MLflow's scoring app: request ids, Prometheus metrics, error bodies.

Runs inside the scoring-server process (see :mod:`mlkit.serve._app`). Pure ASGI rather than
Starlette's ``BaseHTTPMiddleware``: it adds no task per request and streams bodies untouched
except error bodies of ``/invocations``, which it rewrites (see :func:`clean_error_body`).

Error policy (why the bodies are rewritten)
-------------------------------------------
MLflow echoes the whole request (for malformed JSON, the raw bytes) and a server-side stack trace
in its error bodies. Both leak data and internals to any client and can make a 10 MB bad request
produce a 10 MB answer. mlkit keeps MLflow's status code and message, drops ``stack_trace``
(it goes to the server log under the request id), elides the middle of messages longer than
:data:`MAX_MESSAGE` characters, and adds ``request_id`` so a client report can be matched to
the log. Status codes: input that breaks the signature or the protocol stays 4xx (MLflow's
choice); a crash *inside* the model on input that passed the signature becomes 500 (see
``mlkit.serve._app``), because it is the model's fault, not the client's, and must show up
in the error metrics.
"""

from __future__ import annotations

import contextvars
import json
import re
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ServingMiddleware", "Metrics", "REQUEST", "RequestInfo", "clean_error_body", "MAX_MESSAGE",
    "request_id",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]



@dataclass
class RequestInfo:
    """The request being served: id, arrival time (ns since the epoch), whether it reached
    the model's predict. asyncio copies the context into tasks and ``asyncio.to_thread``, so
    the predict wrapper sees (and marks) the same object."""

    id: str
    time_ns: int
    predicted: bool = False


REQUEST: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "mlkit_request", default=None
)

MAX_MESSAGE = 1000
_KNOWN_PATHS = frozenset({"/invocations", "/ping", "/health", "/version"})
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Latency buckets for small tabular models: 1 ms .. 10 s.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The Prometheus metrics of one scoring server, via prometheus_client.

    With several uvicorn workers prometheus_client's multiprocess mode is used
    (``PROMETHEUS_MULTIPROC_DIR`` set by ``serve.start``): each worker writes its samples to
    files there and ``/metrics`` aggregates them, whichever worker answers the scrape.

    Metric names: ``mlkit_serve_requests_total{path,method,status}``,
    ``mlkit_serve_request_duration_seconds{path}`` (histogram),
    ``mlkit_serve_request_errors_total{path,status}`` (responses with status >= 400) and
    ``mlkit_serve_predicted_rows_total``.
    """

    def __init__(self) -> None:
        import os

        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Histogram,
            make_asgi_app,
        )

        multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if multiprocess:
            from prometheus_client import multiprocess as mp

            self.registry = CollectorRegistry()
            mp.MultiProcessCollector(self.registry)
            target = None  # samples go to the shared files; the collector reads them back
        else:
            from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

            self.registry = CollectorRegistry()
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
            target = self.registry
        self.requests = Counter(
            "mlkit_serve_requests", "HTTP requests answered by the scoring server",
            ["path", "method", "status"], registry=target,
        )
        self.latency = Histogram(
            "mlkit_serve_request_duration_seconds", "Time to answer a request, in seconds",
            ["path"], buckets=_BUCKETS, registry=target,
        )
        self.errors = Counter(
            "mlkit_serve_request_errors", "Requests answered with an HTTP status >= 400",
            ["path", "status"], registry=target,
        )
        self.rows = Counter(
            "mlkit_serve_predicted_rows", "Rows the model scored", registry=target,
        )
        self.app: ASGIApp = make_asgi_app(self.registry)

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        label = path if path in _KNOWN_PATHS else "other"  # bounded label cardinality
        self.requests.labels(label, method, str(status)).inc()
        self.latency.labels(label).observe(seconds)
        if status >= 400:
            self.errors.labels(label, str(status)).inc()


def _elide(text: str, limit: int = MAX_MESSAGE) -> str:
    if len(text) <= limit:
        return text
    # MLflow puts the echoed input first and the reason last: keep the end.
    head, tail = limit // 5, limit - limit // 5
    return f"{text[:head]} ...[{len(text) - limit} characters elided]... {text[-tail:]}"


def clean_error_body(body: bytes, request_id: str) -> bytes:
    """MLflow's JSON error body without stack trace, a bounded message and the request id.

    Examples
    --------
    >>> clean_error_body(b'{"error_code": "BAD_REQUEST", "message": "m", "stack_trace": "T"}', "r")
    b'{"error_code": "BAD_REQUEST", "message": "m", "request_id": "r"}'
    """
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        text = body.decode("utf-8", "replace")
        payload = {"error_code": "BAD_REQUEST", "message": text}
    trace = payload.pop("stack_trace", None)
    if trace:
        print(f"mlkit: request {request_id} failed:\n{trace}", file=sys.stderr, flush=True)
    out = {k: v for k, v in payload.items() if k in ("error_code", "message", "error_class")}
    out["message"] = _elide(str(out.get("message", "")))
    out["request_id"] = request_id
    return json.dumps(out).encode()


def request_id(scope: Scope) -> str:
    """The client's ``x-request-id`` when it is a sane token, else a new random one.

    Examples
    --------
    >>> request_id({"headers": [(b"x-request-id", b"abc-1")]})
    'abc-1'
    >>> len(request_id({"headers": [(b"x-request-id", b"bad id with spaces")]}))
    32
    """
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID_RE.match(text):
                return text
    return uuid.uuid4().hex


class ServingMiddleware:
    """Wrap MLflow's scoring app (an ASGI app) with mlkit's serving features.

    Parameters
    ----------
    app : ASGI app
        ``mlflow.pyfunc.scoring_server.init(model)``.
    metrics : Metrics, optional
        When given, ``/metrics`` serves Prometheus text and every request is measured.
    on_shutdown : list of callables
        Run at ASGI lifespan shutdown (uvicorn's graceful stop): flushes the prediction log.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | None = None,
        on_shutdown: list[Callable[[], None]] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.on_shutdown = list(on_shutdown or [])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/metrics" and self.metrics is not None:
            await self.metrics.app(scope, receive, send)
            return
        await self._http(scope, receive, send, path)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                for callback in self.on_shutdown:
                    try:
                        callback()
                    except Exception as exc:  # the remaining callbacks must still run
                        print(f"mlkit: shutdown hook failed: {exc!r}", file=sys.stderr)
            return message

        return wrapped

    async def _http(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        start = time.perf_counter()
        info = RequestInfo(request_id(scope), time.time_ns())
        token = REQUEST.set(info)
        rid_header = (b"x-request-id", info.id.encode())
        hold_errors = path == "/invocations"
        state: dict[str, Any] = {"status": 500, "held": None, "chunks": [], "sent": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message = dict(message)
                message["headers"] = [*message.get("headers", []), rid_header]
                if hold_errors and message["status"] >= 400:
                    state["held"] = message  # sent, cleaned, once the app has finished
                    return
                state["sent"] = True
                await send(message)
            elif message["type"] == "http.response.body" and state["held"] is not None:
                state["chunks"].append(message.get("body", b""))
            else:
                await send(message)

        async def send_error(status: int, body: bytes, headers: list[Any]) -> None:
            state["status"], state["sent"] = status, True
            headers = [
                (k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")
            ] + [(b"content-length", str(len(body)).encode()),
                 (b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        try:
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as exc:
                if state["sent"]:
                    raise
                traceback.print_exc(file=sys.stderr)
                if not info.predicted:
                    # Nothing reached the model: MLflow's parser failed on this body in a way
                    # it does not catch (e.g. RecursionError on a JSON document nested thousands
                    # deep). The body is at fault: a client error, not a 500.
                    status, code = 400, "BAD_REQUEST"
                    message = f"cannot parse the request body: {type(exc).__name__}: {exc}"
                else:
                    status, code = 500, "INTERNAL_ERROR"
                    message = f"the server failed while answering: {type(exc).__name__}"
                body = json.dumps({"error_code": code, "message": _elide(message),
                                   "request_id": info.id}).encode()
                await send_error(status, body, [rid_header])
                return
            if state["held"] is not None:
                body = clean_error_body(b"".join(state["chunks"]), info.id)
                await send_error(state["held"]["status"], body, state["held"]["headers"])
        finally:
            REQUEST.reset(token)
            if self.metrics is not None:
                self.metrics.observe(
                    path, scope.get("method", ""), state["status"], time.perf_counter() - start
                )
