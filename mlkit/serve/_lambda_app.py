"""The AWS Lambda handler: mlkit's scoring app (MLflow's own, wrapped) behind Mangum.

Runs inside the image that :func:`mlkit.serve.lambda_package` describes; its
``lambda_handler.py`` is two lines calling :func:`create_handler`. The app is the one
``serve.start(..., metrics=True)`` runs (:func:`mlkit.serve._app.create_app`): MLflow's
``scoring_server.init(model)`` (same parsing, signature enforcement and answers), the
strings-column check and model-crash classification of :func:`~mlkit.serve._app.instrument_model`,
and :class:`~mlkit.serve._middleware.ServingMiddleware` (request ids, clean error bodies,
nothing unparseable a 5xx). Mangum turns API Gateway REST (v1), HTTP API (v2), Lambda Function
URL and ALB events into ASGI requests and the answers back into the event's response format.

What Lambda adds in front (:class:`LambdaFront`), all before MLflow sees the request:

- paths: an API Gateway stage or resource prefix is dropped (``/prod/invocations`` ->
  ``/invocations``), and the function's root answers too (``POST /`` scores, ``GET /`` pings),
  since a Function URL has no path of its own;
- the request id is Lambda's (``context.aws_request_id``) unless the client sent
  ``X-Request-Id``, so an error body can be matched to its CloudWatch log line;
- bodies over ``max_body_bytes`` get 413 and a missing ``Content-Type`` 415 (as mlkit's gateway
  answers them; MLflow's own app answers 500 there);
- an event Mangum cannot read (not an HTTP event, a body that is not valid base64) gets 400.
"""

from __future__ import annotations

import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["create_handler", "LambdaFront", "DEFAULT_MAX_BODY_BYTES"]

# Lambda refuses synchronous request payloads over 6 MB itself; the limit is set below it so
# the client gets mlkit's 413 with a reason instead of AWS's generic error.
DEFAULT_MAX_BODY_BYTES = 6 * 1000 * 1000 - 64 * 1024
_KNOWN = ("/invocations", "/ping", "/health", "/version")


def route(method: str, path: str) -> str:
    """The scoring app's path for a Lambda request path.

    Examples
    --------
    >>> route("POST", "/prod/invocations"), route("POST", "/"), route("GET", "/")
    ('/invocations', '/invocations', '/ping')
    """
    path = "/" + path.strip("/")
    if path == "/":
        return "/invocations" if method == "POST" else "/ping"
    for known in _KNOWN:
        if path.endswith(known):
            return known
    return path


def _json_error(status: int, code: str, message: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"error_code": code, "message": message}).encode()
    start = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, body


class LambdaFront:
    """ASGI: size limit and Content-Type check for ``POST /invocations`` (see module docstring).

    Sits inside :class:`~mlkit.serve._middleware.ServingMiddleware`, which adds the request id
    to these answers as to MLflow's.
    """

    def __init__(self, app: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = int(max_body_bytes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != "/invocations" \
                or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        from mlkit.serve._replica import _content_type, _read_body, _replay

        body = await _read_body(receive)
        error = None
        if len(body) > self.max_body:
            error = _json_error(413, "PAYLOAD_TOO_LARGE", f"request bodies are limited to "
                                f"{self.max_body} bytes: send fewer rows per request")
        elif not (_content_type(scope) or "").strip():
            error = _json_error(415, "UNSUPPORTED_MEDIA_TYPE", "set Content-Type: "
                                "application/json (or text/csv, application/vnd.apache.parquet)")
        if error is not None:
            await send(error[0])
            await send({"type": "http.response.body", "body": error[1]})
            return
        await self.app(scope, _replay(body, receive), send)


class _Paths:
    """Outermost ASGI layer: Lambda paths to the app's (:func:`route`), Lambda's request id."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope["path"] = route(scope.get("method", ""), scope.get("path", "/"))
            headers = list(scope.get("headers", ()))
            rid = getattr(scope.get("aws.context"), "aws_request_id", None)
            if rid and not any(bytes(k).lower() == b"x-request-id" for k, _ in headers):
                headers.append((b"x-request-id", str(rid).encode("latin-1", "replace")))
            scope["headers"] = headers
        await self.app(scope, receive, send)


def _bad_event(message: str, context: Any) -> dict[str, Any]:
    # a shape every HTTP integration reads (REST, HTTP API, Function URL, ALB)
    payload = {"error_code": "BAD_REQUEST", "message": message}
    rid = getattr(context, "aws_request_id", None)
    if rid:
        payload["request_id"] = str(rid)
    return {"statusCode": 400, "headers": {"content-type": "application/json"},
            "body": json.dumps(payload), "isBase64Encoded": False}


def create_handler(model_path: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """Load the model once (the cold start) and return the Lambda handler ``(event, context)``.

    Parameters
    ----------
    model_path : str
        The MLflow model folder inside the image.
    max_body_bytes : int
        Larger request bodies get HTTP 413.

    Examples
    --------
    >>> handler = create_handler("/var/task/model")                      # doctest: +SKIP
    >>> handler({"version": "2.0", "requestContext": {...}, ...}, None)  # doctest: +SKIP
    {'statusCode': 200, 'body': '{"predictions": [1, 0]}', ...}
    """
    from mangum import Mangum
    from mlflow.pyfunc import scoring_server

    from mlkit.serve._app import instrument_model
    from mlkit.serve._middleware import ServingMiddleware

    model = scoring_server.load_model_with_mlflow_config(model_path)
    instrument_model(model)
    app = _Paths(ServingMiddleware(LambdaFront(scoring_server.init(model), max_body_bytes)))
    # lifespan off: MLflow's app has no start-up work, and Mangum would otherwise run a whole
    # lifespan cycle on every invocation
    adapter = Mangum(app, lifespan="off")

    def answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # as Lambda calls it: no loop running in this thread
            return adapter(event, context)

        # Called from a running event loop (a notebook's kernel, async code): Mangum drives a
        # loop of its own, so it runs in a thread that has one.
        def in_thread() -> dict[str, Any]:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                return adapter(event, context)
            finally:
                asyncio.set_event_loop(None)
                loop.close()

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(in_thread).result()

    def handler(event: Any, context: Any) -> dict[str, Any]:
        import binascii

        if not isinstance(event, dict):
            return _bad_event("the event is not a JSON object: invoke through API Gateway, "
                              "a Function URL or an ALB", context)
        # Mangum's reading of the event, checked first so that only its failures (not an HTTP
        # event, a body that is not base64) become a 400 here
        try:
            request = adapter.infer(event, context)
            request.scope, request.body  # noqa: B018 - properties that parse the event
        except binascii.Error:
            return _bad_event("the request body is marked base64 but is not valid base64",
                              context)
        except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
            print(f"mlkit: unreadable Lambda event: {exc!r}", file=sys.stderr, flush=True)
            return _bad_event("not an HTTP event mlkit can read (API Gateway REST or HTTP API, "
                              "Function URL, ALB)", context)
        return answer(event, context)

    return handler
