"""MLflow for training jobs: one run per job (the active run if there is one), metrics logged
from the client in batches.

Workers never talk to MLflow: they stream metrics to the client, which logs them. That keeps the
default SQLite store single-writer and makes a job with N ranks produce ONE run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlkit._imports import require

__all__ = ["TrackedRun", "training_run", "MetricLog", "log_datasets"]

_PARAM_LIMIT = 6000  # MLflow's maximum length of a param value


@dataclass(frozen=True)
class TrackedRun:
    """Where a job's metrics go: a run id and the tracking URI it lives under."""

    run_id: str
    tracking_uri: str


def _param_values(params: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:_PARAM_LIMIT] for k, v in params.items() if v is not None}


@contextlib.contextmanager
def training_run(
    name: str, params: dict[str, Any], enabled: bool = True
) -> Iterator[TrackedRun | None]:
    """Yield the MLflow run a job logs to (None when tracking is off).

    With an active run (the user's, or a tuning trial's nested run) the job logs into it and
    leaves ending it to its owner; otherwise :func:`mlkit.track.run` starts one (with lineage
    tags) that always ends FINISHED, FAILED (exception) or KILLED (interrupt), unless tracking
    is switched off (``%mlscale track off``).
    """
    if not enabled:
        yield None
        return
    mlflow = require("mlflow")
    active = mlflow.active_run()
    if active is not None:
        run_id = active.info.run_id
        existing = mlflow.MlflowClient().get_run(run_id).data.params
        new = {k: v for k, v in _param_values(params).items() if k not in existing}
        if new:
            mlflow.log_params(new)
        yield TrackedRun(run_id, mlflow.get_tracking_uri())
        return
    from mlkit.track import run

    # auto=True: mlkit opened this run unasked, so `%mlscale track off` skips it (yields None).
    with run(name, params=_param_values(params), auto=True) as active_run:
        if active_run is None:
            yield None
        else:
            yield TrackedRun(active_run.info.run_id, mlflow.get_tracking_uri())


class MetricLog:
    """Buffers per-step metrics and writes them with ``log_batch`` at most every ``interval`` s.

    One SQLite transaction per flush instead of one per metric keeps logging out of the way of
    training (it runs on the client while the workers train).
    """

    def __init__(self, run: TrackedRun | None, interval: float = 2.0) -> None:
        self.run = run
        self.interval = interval
        self._pending: list[Any] = []
        self._logged: set[tuple[str, int]] = set()
        self._last = time.monotonic()
        self._client: Any = None
        if run is not None:
            mlflow = require("mlflow")
            self._client = mlflow.MlflowClient(run.tracking_uri)

    def add(self, step: int, metrics: dict[str, Any]) -> None:
        """Queue ``metrics`` at ``step`` (a key already logged at that step is skipped)."""
        if self.run is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for key, value in metrics.items():
            if (key, step) in self._logged or not isinstance(value, (int, float)):
                continue
            self._logged.add((key, step))
            self._pending.append(Metric(key=key, value=float(value), timestamp=now, step=step))

    def flush(self, force: bool = False) -> None:
        """Write queued metrics if ``interval`` has passed (or ``force``)."""
        if self.run is None or not self._pending:
            return
        if not force and time.monotonic() - self._last < self.interval:
            return
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), 1000):  # log_batch takes at most 1000 metrics
            self._client.log_batch(self.run.run_id, metrics=pending[start : start + 1000])
        self._last = time.monotonic()


def log_datasets(run: TrackedRun | None, frames: dict[str, Any]) -> None:
    """Record each frame's fingerprint as a dataset input of the run (lineage); the hashing runs
    on the cluster for dask frames. ``frames`` maps context ("training") to (name, frame)."""
    if run is None:
        return
    from mlkit.track import log_dataset

    for context, (name, frame) in frames.items():
        if frame is not None:
            log_dataset(frame, name, context=context)
