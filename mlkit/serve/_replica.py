"""One scoring replica with adaptive batching: MLflow's pyfunc model and scoring app, batched.

Run by uvicorn in each replica process (started by the gateway, see :mod:`mlkit.serve._pool`)::

    python -m uvicorn --factory mlkit.serve._replica:create_app --host 127.0.0.1 --port P

with its settings in ``MLKIT_REPLICA_CONFIG`` (JSON: ``model_path``, ``max_batch_rows``,
``max_wait_ms``; on a cluster worker also ``token``, the shared secret every request must carry
(:class:`ReplicaAuth`), and ``lease_s``).

Why batching happens here, before MLflow's per-request path: MLflow's scoring app pays JSON ->
pandas -> signature enforcement -> preprocessing -> one model call for every request; on a
small machine that per-request path is the ceiling, not the web layer. The replica therefore

1. parses a JSON ``dataframe_split`` / ``dataframe_records`` body with MLflow's own parser
   (``scoring_server.infer_and_parse_data``, with the signature's schema: the very frame MLflow
   would build),
2. queues the frame (:class:`~mlkit.serve._batcher.Batcher`); frames with the same columns and
   dtypes are concatenated into one frame per batch,
3. calls ``model.predict`` (``mlflow.pyfunc.PyFuncModel.predict``: the signature is enforced
   there, once per batch) and splits the predictions back by row counts, each serialised with
   MLflow's ``predictions_to_json``.

Anything else (CSV, Parquet, ``params``, tensors, LLM payloads, any body the parser refuses) and
any batch whose model call fails goes, request by request, to MLflow's own scoring app
(``scoring_server.init``): its exact answer, status and error. The app is wrapped in
:class:`~mlkit.serve._middleware.ServingMiddleware` (request ids, clean error bodies, nothing
unparseable ever a 5xx).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import defaultdict
from io import StringIO
from typing import Any

__all__ = ["create_app", "BatchingApp", "ReplicaAuth", "REPLICA_ENV", "split_predictions"]

REPLICA_ENV = "MLKIT_REPLICA_CONFIG"
_FAST_FORMATS = ("dataframe_split", "dataframe_records")
_FALLBACK = object()  # "answer this one with MLflow's own app"


def split_predictions(raw: Any, sizes: list[int]) -> list[Any] | None:
    """Cut a batch's predictions back into per-request pieces; None if the shape is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> [p.tolist() for p in split_predictions(np.arange(5), [2, 3])]
    [[0, 1], [2, 3, 4]]
    """
    import numpy as np
    import pandas as pd

    total = sum(sizes)
    bounds = np.cumsum([0, *sizes])
    if isinstance(raw, np.ndarray) and raw.ndim >= 1 and raw.shape[0] == total:
        return [raw[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if isinstance(raw, (pd.Series, pd.DataFrame)) and len(raw) == total:
        return [raw.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if isinstance(raw, list) and len(raw) == total:
        return [raw[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return None


def _content_type(scope: dict[str, Any]) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            return value.decode("latin-1")
    return None


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class BatchingApp:
    """ASGI app: batched ``POST /invocations``; everything else to MLflow's scoring app.

    Parameters
    ----------
    model : mlflow.pyfunc.PyFuncModel
        The loaded model (its ``predict`` enforces the signature).
    mlflow_app : ASGI app
        ``mlflow.pyfunc.scoring_server.init(model)``, for what is not batched.
    max_batch_rows, max_wait_ms : int, float
        See :class:`~mlkit.serve._batcher.Batcher`.
    """

    def __init__(self, model: Any, mlflow_app: Any, max_batch_rows: int = 64,
                 max_wait_ms: float = 5.0) -> None:
        from mlkit.serve._batcher import Batcher

        self.model = model
        self.mlflow_app = mlflow_app
        self.schema = model.metadata.get_input_schema()
        hinted = getattr(model.metadata, "_is_signature_from_type_hint", lambda: False)()
        # type-hinted pyfuncs take raw "inputs", not frames: never batched
        self.batchable = not hinted
        self.batcher = Batcher(self._run_batch, max_batch_rows=max_batch_rows,
                               max_wait_ms=max_wait_ms)

    # -- parsing (event loop) ----------------------------------------------------------
    def _parse(self, content_type: str | None, body: bytes) -> Any:
        """(frame, key) for a body that can join a batch, else None (MLflow answers it)."""
        if not self.batchable or content_type is None:
            return None
        mime, _, rest = content_type.partition(";")
        if mime.strip().lower() != "application/json":
            return None
        if rest.strip() and rest.replace(" ", "").lower() != "charset=utf-8":
            return None
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(decoded, dict) or len(decoded) != 1:
            return None
        fmt = next(iter(decoded))
        if fmt not in _FAST_FORMATS:
            return None
        import pandas as pd
        from mlflow.pyfunc.scoring_server import infer_and_parse_data

        try:
            frame = infer_and_parse_data(decoded, self.schema)
        except Exception:  # noqa: BLE001 - MLflow's app gives the proper error for this body
            return None
        if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
            return None
        key = (tuple(map(str, frame.columns)), tuple(map(str, frame.dtypes)))
        return frame, key

    # -- the model thread --------------------------------------------------------------
    def _run_batch(self, items: list[Any]) -> list[Any]:
        import pandas as pd
        from mlflow.pyfunc.scoring_server import predictions_to_json

        out: list[Any] = [_FALLBACK] * len(items)
        groups: dict[Any, list[int]] = defaultdict(list)
        for i, (_frame, key) in enumerate(items):
            groups[key].append(i)
        for idxs in groups.values():
            frames = [items[i][0] for i in idxs]
            try:
                batch = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
                raw = self.model.predict(batch)
                parts = split_predictions(raw, [len(f) for f in frames])
                if parts is None:
                    continue
                for i, part in zip(idxs, parts, strict=True):
                    buf = StringIO()
                    predictions_to_json(part, buf)
                    out[i] = buf.getvalue().encode()
            except Exception:  # noqa: BLE001 - each request then gets MLflow's own answer
                continue
        return out

    # -- ASGI --------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != "/invocations" \
                or scope.get("method") != "POST":
            await self.mlflow_app(scope, receive, send)
            return
        body = await _read_body(receive)
        parsed = self._parse(_content_type(scope), body)
        result = _FALLBACK
        if parsed is not None:
            result = await self.batcher.submit(parsed, rows=len(parsed[0]))
        if result is _FALLBACK:
            await self.mlflow_app(scope, _replay(body, receive), send)
            return
        st = self.batcher.stats
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(result)).encode()),
            (b"x-mlkit-batch-rows", str(st.last_rows).encode()),
            (b"x-mlkit-batch-requests", str(st.last_requests).encode()),
            (b"x-mlkit-queue-depth", str(self.batcher.depth).encode()),
        ]})
        await send({"type": "http.response.body", "body": result})


def _exit_with_parent() -> None:
    """Replicas are the gateway's children: if it dies (even SIGKILL), they go too."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="mlkit-parent-watch", daemon=True).start()


class ReplicaAuth:
    """Refuse every HTTP request without the route's shared secret (a replica on a worker
    host listens beyond loopback: only its gateway may call it).

    Missing ``x-mlkit-replica-token`` -> 401, a wrong one -> 403. Each accepted request renews
    the lease: with ``lease_s``, a replica that no gateway has called for that long exits (its
    gateway is gone, e.g. SIGKILLed, and nobody else will stop it).
    """

    HEADER = b"x-mlkit-replica-token"

    def __init__(self, app: Any, token: str, lease_s: float | None = None) -> None:
        self.app = app
        self.token = token.encode()
        self.last = time.monotonic()
        if lease_s:
            threading.Thread(target=self._watch, args=(float(lease_s),), daemon=True,
                             name="mlkit-replica-lease").start()

    def _watch(self, lease_s: float) -> None:
        while True:
            time.sleep(min(lease_s / 4, 1.0))
            if time.monotonic() - self.last > lease_s:
                print(f"mlkit: replica exits: no call from its gateway for {lease_s:g} s",
                      file=sys.stderr, flush=True)
                os._exit(0)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import hmac

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope.get("headers", ()):
            if key == self.HEADER:
                given = value
        if given is not None and hmac.compare_digest(given, self.token):
            self.last = time.monotonic()
            await self.app(scope, receive, send)
            return
        status = 401 if given is None else 403
        body = json.dumps({"error_code": "UNAUTHENTICATED" if status == 401
                           else "PERMISSION_DENIED",
                           "message": "this replica answers its gateway only"}).encode()
        await _read_body(receive)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app() -> Any:
    """uvicorn factory: load the model, build MLflow's app, batch in front of it."""
    from mlflow.pyfunc import scoring_server

    from mlkit.serve._app import instrument_model
    from mlkit.serve._middleware import ServingMiddleware

    cfg = json.loads(os.environ[REPLICA_ENV])
    if cfg.get("watch_parent", True):
        _exit_with_parent()
    model = scoring_server.load_model_with_mlflow_config(cfg["model_path"])
    instrument_model(model)  # strings-column check, model crash -> 500 (as mlkit's own app)
    app = BatchingApp(model, scoring_server.init(model),
                      max_batch_rows=int(cfg.get("max_batch_rows", 64)),
                      max_wait_ms=float(cfg.get("max_wait_ms", 5.0)))
    print(f"mlkit: replica ready (model {cfg['model_path']}, batches of <= "
          f"{app.batcher.max_batch_rows} rows, wait <= {app.batcher.max_wait * 1000:g} ms)",
          file=sys.stderr, flush=True)
    served: Any = ServingMiddleware(app)
    if cfg.get("token"):
        served = ReplicaAuth(served, str(cfg["token"]), cfg.get("lease_s"))
    return served
