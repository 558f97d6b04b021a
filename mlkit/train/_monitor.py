"""The client side of a running job: drain streamed messages into the progress bar and the
MLflow metric log, and notice a lost worker without waiting for the engine to time out.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from mlkit.train._channel import Channel
from mlkit.train._progress import Progress
from mlkit.train._tracking import MetricLog

__all__ = ["JobMonitor", "WorkerLost"]


class WorkerLost(Exception):
    """A worker that holds a rank left the cluster (internal; callers raise TrainingError)."""

    def __init__(self, workers: list[str]) -> None:
        super().__init__(", ".join(workers))
        self.workers = workers


class JobMonitor:
    """Follows one job: ``wait(done)`` returns when ``done()`` is true.

    Parameters
    ----------
    client : distributed.Client
    channel : Channel
        The job's message channel.
    workers : iterable of str
        Addresses running the ranks; one leaving raises :class:`WorkerLost`.
    progress : Progress
    metrics : MetricLog
    """

    def __init__(
        self,
        client: Any,
        channel: Channel,
        workers: Iterable[str],
        progress: Progress,
        metrics: MetricLog,
        *,
        poll: float = 0.2,
        worker_check: float = 1.0,
    ) -> None:
        self.client = client
        self.channel = channel
        self.workers = list(workers)
        self.progress = progress
        self.metrics = metrics
        self.poll = poll
        self.worker_check = worker_check
        self.history: list[dict[str, Any]] = []

    def handle(self, msg: dict[str, Any]) -> None:
        step = int(msg["step"])
        metrics = dict(msg.get("metrics") or {})
        self.history.append({"step": step, **metrics})
        self.progress.update(msg.get("position", step), metrics)
        self.metrics.add(step, metrics)

    def pump(self, timeout: float) -> None:
        """Handle whatever arrived within ``timeout`` seconds and flush metrics when due."""
        for msg in self.channel.drain(timeout):
            self.handle(msg)
        self.metrics.flush()

    def lost_workers(self) -> list[str]:
        try:
            present = set(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:  # scheduler briefly busy: check again next time
            return []
        return [w for w in self.workers if w not in present]

    def wait(self, done: Callable[[], bool]) -> None:
        """Pump messages until ``done()``; raise :class:`WorkerLost` if a rank's worker leaves."""
        last_check = time.monotonic()
        suspects: set[str] = set()
        while not done():
            self.pump(self.poll)
            if time.monotonic() - last_check >= self.worker_check:
                last_check = time.monotonic()
                lost = self.lost_workers()
                # Missing from two checks in a row: one answer from a busy scheduler is not
                # enough to abandon a training.
                confirmed = [w for w in lost if w in suspects]
                if confirmed:
                    raise WorkerLost(confirmed)
                suspects = set(lost)
        self.pump(0.0)

    def settle(self, done: Callable[[], bool], timeout: float) -> bool:
        """After a stop or a failure: keep pumping up to ``timeout`` s for the ranks to end.

        A second interrupt while waiting gives up at once (the ranks keep their stop request).
        """
        deadline = time.monotonic() + timeout
        with contextlib.suppress(KeyboardInterrupt):
            while not done() and time.monotonic() < deadline:
                self.pump(self.poll)
        with contextlib.suppress(Exception):
            self.pump(0.0)
            self.metrics.flush(force=True)
        return done()
