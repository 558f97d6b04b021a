"""The prediction log: what a served model was asked and what it answered, as Parquet files.

Format (shared with :mod:`mlkit.monitor`, which reads it; keep it exactly):

- folder ``<mlkit home>/predictions/<server name>/``;
- append-only files ``part-<time_ns>-<pid>.parquet``, each written under a hidden temporary
  name in the same folder and renamed into place, so a reader never sees half a file;
- columns: the request's raw input columns as received, then ``prediction`` (or
  ``prediction_0`` .. ``prediction_k`` for multi-output models), ``_mlkit_time``
  (``datetime64[ns, UTC]``, when the request arrived) and ``_mlkit_request_id`` (str).

Rows are buffered in the server process and flushed every ``flush_every`` requests or
``flush_seconds`` seconds, whichever comes first, and on shutdown. Several uvicorn workers each
write their own files (the pid in the name keeps them apart).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlkit._fs import atomic_path
from mlkit._imports import require

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")
pd = require("pandas")
pa = require("pyarrow")
pq = require("pyarrow.parquet")

__all__ = [
    "PredictionLog", "log_frame", "build_frame", "TIME_COLUMN", "REQUEST_ID_COLUMN",
    "PREDICTION_COLUMN",
]

TIME_COLUMN = "_mlkit_time"
REQUEST_ID_COLUMN = "_mlkit_request_id"
PREDICTION_COLUMN = "prediction"


def _inputs_frame(data: Any) -> pd.DataFrame | None:
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True)
    if isinstance(data, pd.Series):
        return data.to_frame().reset_index(drop=True)
    if isinstance(data, dict):
        with contextlib.suppress(ValueError, TypeError):
            return pd.DataFrame({str(k): list(np.asarray(v)) for k, v in data.items()})
        return None
    arr = np.asarray(data) if isinstance(data, (list, np.ndarray)) else None
    if arr is not None and arr.ndim in (1, 2):
        arr = arr.reshape(len(arr), -1)
        return pd.DataFrame(arr, columns=[f"input_{i}" for i in range(arr.shape[1])])
    return None


def _predictions_frame(predictions: Any) -> pd.DataFrame | None:
    if isinstance(predictions, pd.Series):
        return pd.DataFrame({PREDICTION_COLUMN: predictions.to_numpy()})
    if isinstance(predictions, pd.DataFrame):
        values = predictions.reset_index(drop=True)
    else:
        try:
            arr = np.asarray(predictions)
        except (ValueError, TypeError):
            return None
        if arr.ndim == 0 or arr.ndim > 2 or arr.dtype == object and arr.ndim != 1:
            return None
        values = pd.DataFrame(arr.reshape(len(arr), -1))
    if values.shape[1] == 1:
        return pd.DataFrame({PREDICTION_COLUMN: values.iloc[:, 0].to_numpy()})
    values.columns = [f"{PREDICTION_COLUMN}_{i}" for i in range(values.shape[1])]
    return values


def log_frame(data: Any, predictions: Any, time_ns: int, request_id: str) -> pd.DataFrame | None:
    """One request's rows in the log format, or None when they cannot be tabulated.

    Examples
    --------
    >>> df = log_frame(pd.DataFrame({"x": [1.0, 2.0]}), np.array([0, 1]), 0, "r1")
    >>> list(df.columns)
    ['x', 'prediction', '_mlkit_time', '_mlkit_request_id']
    """
    return build_frame([(data, predictions, time_ns, request_id)])


def _fast_predictions(items: list[tuple[Any, Any, int, str]]) -> pd.DataFrame | None:
    """All 1-D array predictions at once (the common case): one concatenate, no frame per row."""
    arrays = []
    for _, predictions, _, _ in items:
        if isinstance(predictions, pd.Series):
            predictions = predictions.to_numpy()
        if not isinstance(predictions, np.ndarray) or predictions.ndim != 1:
            return None
        arrays.append(predictions)
    return pd.DataFrame({PREDICTION_COLUMN: np.concatenate(arrays)})


def build_frame(items: list[tuple[Any, Any, int, str]]) -> pd.DataFrame | None:
    """The log rows of several requests ``(inputs, predictions, time_ns, request_id)``.

    Requests whose inputs or predictions cannot be tabulated, or whose row counts differ, are
    left out. Built once per flush, off the request path: per-request pandas work would cost
    the server more than the prediction itself for small models.
    """
    kept, inputs = [], []
    for item in items:
        frame = _inputs_frame(item[0])
        try:
            ok = frame is not None and len(item[1]) == len(frame)
        except TypeError:  # a scalar prediction
            ok = False
        if ok:
            kept.append(item)
            inputs.append(frame)
    preds = _fast_predictions(kept) if kept else None
    if preds is None:  # 2-D arrays, frames, lists: one small frame per request
        triples = [(k, i, _predictions_frame(k[1])) for k, i in zip(kept, inputs, strict=True)]
        triples = [t for t in triples if t[2] is not None and len(t[2]) == len(t[1])]
        if not triples:
            return None
        kept = [t[0] for t in triples]
        inputs = [t[1] for t in triples]
        preds = pd.concat([t[2] for t in triples], ignore_index=True)
    lengths = np.array([len(i) for i in inputs])
    out = pd.concat(inputs, ignore_index=True) if len(inputs) > 1 else inputs[0]
    out = pd.concat([out, preds], axis=1)
    stamps = np.repeat(np.array([k[2] for k in kept], dtype="int64"), lengths)
    out[TIME_COLUMN] = pd.Series(stamps.view("datetime64[ns]")).dt.tz_localize("UTC")
    out[REQUEST_ID_COLUMN] = np.repeat(np.array([k[3] for k in kept], dtype=object), lengths)
    out[REQUEST_ID_COLUMN] = out[REQUEST_ID_COLUMN].astype("str")
    return out


def _to_table(frame: pd.DataFrame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        # Columns outside the signature are logged as received and may mix types across
        # requests (a number here, a string there); Parquet needs one type per column.
        frame = frame.copy()
        for col in frame.columns:
            if frame[col].dtype == object:
                frame[col] = frame[col].map(lambda v: v if v is None else str(v))
        return pa.Table.from_pandas(frame, preserve_index=False)


class PredictionLog:
    """Buffered, append-only Parquet writer for one server process.

    Parameters
    ----------
    folder : str or Path
        ``<home>/predictions/<server name>``; created if missing.
    flush_every : int
        Write a file once this many requests are buffered.
    flush_seconds : float
        Write buffered requests at least this often.

    Examples
    --------
    >>> log = PredictionLog("/tmp/preds", flush_every=10)             # doctest: +SKIP
    >>> log.record(df, model.predict(df), time.time_ns(), "req-1")    # doctest: +SKIP
    >>> log.close()                                                   # doctest: +SKIP
    """

    def __init__(self, folder: str | Path, flush_every: int = 100, flush_seconds: float = 10.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.flush_every = max(1, int(flush_every))
        self.flush_seconds = max(0.05, float(flush_seconds))
        self._items: list[tuple[Any, Any, int, str]] = []
        self._lock = threading.Lock()  # guards the buffer; request threads append under it
        self._write_lock = threading.Lock()  # one writer at a time (timer thread vs shutdown)
        self._wake = threading.Event()
        self._closed = False
        self.files_written = 0
        self._thread = threading.Thread(target=self._loop, name="mlkit-prediction-log", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # a worker that exits without lifespan shutdown still flushes

    def record(self, data: Any, predictions: Any, time_ns: int, request_id: str) -> bool:
        """Buffer one request's inputs and predictions (converted to rows at flush time)."""
        if self._closed:
            return False
        with self._lock:
            self._items.append((data, predictions, time_ns, request_id))
            full = len(self._items) >= self.flush_every
        if full:
            self._wake.set()
        return True

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if not self._closed:
                self.flush()

    def flush(self) -> Path | None:
        """Write everything buffered to one new Parquet file; returns its path (None if empty)."""
        with self._write_lock:
            with self._lock:
                items, self._items = self._items, []
            if not items:
                return None
            frame = build_frame(items)
            if frame is None:
                return None
            # Prediction columns and the two bookkeeping columns go last, as the format says.
            tail = [c for c in frame.columns if c == PREDICTION_COLUMN
                    or c.startswith(PREDICTION_COLUMN + "_")]
            tail += [TIME_COLUMN, REQUEST_ID_COLUMN]
            frame = frame[[c for c in frame.columns if c not in tail] + tail]
            name = f"part-{time.time_ns()}-{os.getpid()}.parquet"
            try:
                with atomic_path(self.folder / name) as tmp:
                    pq.write_table(_to_table(frame), tmp)
            except Exception as exc:  # a full disk must not take the model down
                print(f"mlkit: could not write the prediction log {name}: {exc!r}; "
                      f"{len(frame)} rows dropped", file=sys.stderr, flush=True)
                return None
            self.files_written += 1
            return self.folder / name

    def close(self) -> None:
        """Stop the timer thread and write what is buffered (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        self.flush()
