"""Adaptive batching: merge concurrent requests into one model call (asyncio, one model thread).

The policy is the one Ray Serve's ``@serve.batch``, Triton's dynamic batcher and BentoML's
adaptive batching share, reduced to what a CPU replica needs:

- **no wait when idle**: a request that arrives at an idle replica goes to the model at once;
- **natural batching under load**: while the model thread is busy, new requests queue; the next
  batch takes everything queued (up to ``max_batch_rows`` rows);
- **bounded wait under load**: when the previous batch had company (the replica is loaded), the
  batcher waits at most ``max_wait_ms`` after the first queued request for more to arrive.

One model thread per replica: predictions never run concurrently inside one process (on a small
machine that only adds contention), and the event loop stays free to parse the next requests
while the model works.

Examples
--------
>>> import asyncio
>>> async def demo():
...     b = Batcher(lambda items: [i * 10 for i in items], max_batch_rows=8, max_wait_ms=2)
...     out = await asyncio.gather(*(b.submit(i, rows=1) for i in range(3)))
...     b.close()
...     return out
>>> asyncio.run(demo())
[0, 10, 20]
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batcher", "BatchStats"]


@dataclass
class BatchStats:
    """What the last batch looked like (exported by the replica in response headers)."""

    batches: int = 0
    rows: int = 0
    last_rows: int = 0
    last_requests: int = 0
    sizes: collections.deque = field(default_factory=lambda: collections.deque(maxlen=256))


class _Item:
    __slots__ = ("payload", "rows", "future", "t")

    def __init__(self, payload: Any, rows: int, future: asyncio.Future) -> None:
        self.payload, self.rows, self.future = payload, rows, future
        self.t = time.monotonic()


class Batcher:
    """Queue payloads and hand them to ``run_batch`` in batches, in one worker thread.

    Parameters
    ----------
    run_batch : callable
        ``run_batch(list_of_payloads) -> list_of_results`` (same length, same order); runs in
        the batcher's thread. An exception fails every request of the batch with it.
    max_batch_rows : int
        Upper bound on the rows of one batch (a single larger request still runs, alone).
    max_wait_ms : float
        Longest wait for company after the first queued request, only while loaded.
    """

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], max_batch_rows: int = 64,
                 max_wait_ms: float = 5.0) -> None:
        self.run_batch = run_batch
        self.max_batch_rows = int(max_batch_rows)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.stats = BatchStats()
        self._queue: collections.deque[_Item] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._loaded = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mlkit-model")

    @property
    def depth(self) -> int:
        """Requests waiting for the model (not counting the batch being predicted)."""
        return len(self._queue)

    async def submit(self, payload: Any, rows: int = 1) -> Any:
        """Queue one request's payload; returns its result once its batch has run."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run_forever())
        item = _Item(payload, max(int(rows), 1), loop.create_future())
        self._queue.append(item)
        assert self._wake is not None
        self._wake.set()
        return await item.future

    def _take(self, batch: list[_Item], rows: int) -> int:
        while self._queue and rows + self._queue[0].rows <= self.max_batch_rows:
            item = self._queue.popleft()
            batch.append(item)
            rows += item.rows
        return rows

    async def _collect(self) -> list[_Item]:
        assert self._wake is not None
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()
        first = self._queue.popleft()
        batch, rows = [first], first.rows
        rows = self._take(batch, rows)
        if self._loaded:
            deadline = first.t + self.max_wait
            while rows < self.max_batch_rows and (self._queue or time.monotonic() < deadline):
                if self._queue:
                    if rows + self._queue[0].rows > self.max_batch_rows:
                        break  # the next one does not fit: it opens the next batch
                    rows = self._take(batch, rows)
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), deadline - time.monotonic())
                except (asyncio.TimeoutError, TimeoutError):
                    break
        # loaded: this batch had company, or more requests are already waiting behind it
        self._loaded = len(batch) > 1 or bool(self._queue)
        return batch

    async def _run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [i for i in batch if not i.future.done()]  # a client that gave up
            if not live:
                continue
            try:
                results = await loop.run_in_executor(
                    self._executor, self.run_batch, [i.payload for i in live]
                )
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            rows = sum(i.rows for i in live)
            st = self.stats
            st.batches += 1
            st.rows += rows
            st.last_rows, st.last_requests = rows, len(live)
            st.sizes.append(rows)
            for item, result in zip(live, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    def close(self) -> None:
        """Stop the worker task and thread (pending requests are cancelled)."""
        if self._task is not None:
            self._task.cancel()
        for item in self._queue:
            item.future.cancel()
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
