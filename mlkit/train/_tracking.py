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
from mlkit.track._writer import RunWriter

__all__ = ["TrackedRun", "training_run", "MetricLog", "log_datasets"]


@dataclass(frozen=True)
class TrackedRun:
    """Where a job's metrics go: a run id and the tracking URI it lives under."""

    run_id: str
    tracking_uri: str


def _param_values(params: dict[str, Any]) -> dict[str, Any]:
    # None means "not given": left out (the writer cuts values to MLflow's limit).
    return {str(k): v for k, v in params.items() if v is not None}


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
        writer = RunWriter(run_id, mlflow.get_tracking_uri())
        existing = writer.client.get_run(run_id).data.params
        writer.params({k: v for k, v in _param_values(params).items() if k not in existing})
        writer.flush()
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
    """Buffers per-step metrics and writes them at most every ``interval`` s.

    Each flush is one batch of mlkit's MLflow writer, handed to MLflow's asynchronous logging so
    the client loop that follows the workers never waits for the store; ``flush(force=True)``
    (at the end of a job, also a failed or stopped one) waits until all of it is stored.
    """

    def __init__(self, run: TrackedRun | None, interval: float = 2.0) -> None:
        self.run = run
        self.interval = interval
        self._logged: set[tuple[str, int]] = set()
        self._last = time.monotonic()
        self._writer: RunWriter | None = None
        if run is not None:
            self._writer = RunWriter(run.run_id, run.tracking_uri, asynchronous=True)

    def add(self, step: int, metrics: dict[str, Any]) -> None:
        """Queue ``metrics`` at ``step`` (a key already logged at that step is skipped)."""
        if self._writer is None:
            return
        for key, value in metrics.items():
            if (key, step) in self._logged or not isinstance(value, (int, float)):
                continue
            self._logged.add((key, step))
            self._writer.metric(key, value, step)

    def flush(self, force: bool = False) -> None:
        """Write queued metrics if ``interval`` has passed; ``force``: write now and wait."""
        if self._writer is None:
            return
        if force:
            self._writer.close()
        elif self._writer.pending and time.monotonic() - self._last >= self.interval:
            self._writer.flush()
        else:
            return
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
