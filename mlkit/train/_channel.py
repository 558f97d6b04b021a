"""The two-way channel between the notebook and the training tasks running on the workers.

Workers -> notebook: per-round / per-report messages go through Dask's event log
(``Worker.log_event`` on a topic the client subscribes to), so progress streams live without
polling and without a second connection from each worker.

Notebook -> workers: a stop request is a ``threading.Event`` per job kept in the worker process
and set through ``Client.run`` (which executes on the worker's event loop, not in the busy task
thread). Reading it in the training loop is a local memory read, so it costs nothing per round;
the ranks then agree on it with one tiny allreduce so they all stop at the same step.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections.abc import Iterable
from typing import Any

__all__ = ["Channel", "stop_flag", "request_stop", "release", "publish"]

_FLAGS: dict[str, threading.Event] = {}
_WAKE: Any = object()  # put in a channel's queue by Channel.wake: not a message
_LOCK = threading.Lock()


def stop_flag(job_id: str) -> threading.Event:
    """The stop flag of ``job_id`` in this process (created on first use)."""
    with _LOCK:
        flag = _FLAGS.get(job_id)
        if flag is None:
            flag = _FLAGS[job_id] = threading.Event()
        return flag


def request_stop(job_id: str) -> None:
    """Set the stop flag of ``job_id`` (runs on workers through ``Client.run``)."""
    stop_flag(job_id).set()


def release(job_id: str) -> None:
    """Forget the stop flag of a finished job."""
    with _LOCK:
        _FLAGS.pop(job_id, None)


def publish(topic: str, msg: dict[str, Any]) -> None:
    """Send ``msg`` (msgpack-serialisable) from a task to the client subscribed to ``topic``."""
    from distributed import get_worker

    get_worker().log_event(topic, msg)


class Channel:
    """Client side: a subscription to the job's topic plus the way to ask its ranks to stop.

    Examples
    --------
    >>> with Channel(client) as ch:          # doctest: +SKIP
    ...     msgs = ch.drain(timeout=0.2)
    """

    def __init__(self, client: Any, job_id: str | None = None) -> None:
        self.client = client
        self.job_id = job_id or uuid.uuid4().hex[:12]
        self.topic = f"mlkit-train-{self.job_id}"
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stopped: list[str] = []

    def __enter__(self) -> Channel:
        self.client.subscribe_topic(self.topic, self._on_event)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):  # the client may already be closed
            self.client.unsubscribe_topic(self.topic)
        if self._stopped:  # ranks that ended before the request left a flag behind
            self.forget(self._stopped)

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        self._events.put(event[1])

    def drain(self, timeout: float = 0.0) -> list[dict[str, Any]]:
        """Messages received so far, waiting up to ``timeout`` seconds for the first one (or
        for :meth:`wake`)."""
        out: list[dict[str, Any]] = []
        try:
            first = self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
            out.append(first)
            while True:
                out.append(self._events.get_nowait())
        except queue.Empty:
            pass
        return [m for m in out if m is not _WAKE]

    def wake(self) -> None:
        """End a :meth:`drain` that is waiting, now (the job ended: no message will come).

        Without it the notebook noticed the end of a training only when its wait for the next
        round's message timed out, up to 0.2 s after the last round.

        Examples
        --------
        >>> import time
        >>> ch = Channel(client=None)
        >>> ch.wake(); start = time.monotonic(); ch.drain(timeout=600)
        []
        >>> time.monotonic() - start < 300   # it returned on the wake, not at its timeout
        True
        """
        self._events.put(_WAKE)

    def stop(self, workers: Iterable[str]) -> None:
        """Ask the ranks on ``workers`` to stop at their next agreed step."""
        with contextlib.suppress(Exception):
            # Only workers still there: reaching a dead one would wait for a connect timeout.
            present = set(self.client.scheduler_info(n_workers=-1)["workers"])
            addrs = [w for w in workers if w in present]
            if addrs:
                self._stopped = addrs
                self.client.run(request_stop, self.job_id, workers=addrs, wait=True)

    def forget(self, workers: Iterable[str]) -> None:
        """Drop the job's stop flag on ``workers`` (after the job is over)."""
        with contextlib.suppress(Exception):
            # wait=True: distributed runs a plain function only that way ("Combination not
            # supported" otherwise, and the flag stayed behind).
            self.client.run(release, self.job_id, workers=list(workers), wait=True)
