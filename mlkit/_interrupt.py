"""The one interrupt path: what the notebook's stop button (KeyboardInterrupt) does to cluster work.

The cluster itself is out of the Interrupt's reach (its processes live in their own session,
see :mod:`mlkit.cluster._local`). What an interrupt must stop is the *call*: its futures are
cancelled on the scheduler, ranks of a distributed training are asked to leave together (so no
peer waits inside a collective), and control returns within a few seconds. MLflow runs end
KILLED where they are opened (:func:`mlkit.track.run` maps KeyboardInterrupt to KILLED).

Long mlkit calls use :class:`interruptible`; the IPython extension installs :func:`install`
so that a plain interrupted cell (``client.submit(f).result()``) does not leave its work
running on the scheduler either. Importing this module is cheap (no Dask).

Examples
--------
>>> from mlkit._interrupt import interruptible
>>> with interruptible() as scope:          # doctest: +SKIP
...     futures = scope.track(client.map(f, items))
...     results = client.gather(futures)
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["interruptible", "deferred", "cancel", "settle", "install", "uninstall",
           "BUDGET_SECONDS", "STOP_BUDGET_SECONDS"]

#: Seconds an interrupted call may spend stopping its work before control returns anyway.
BUDGET_SECONDS = 3.0
#: The same for distributed trainings, whose ranks stop together at their next step and report
#: their last metrics on the way out: usually done in about a second, this bound only matters on
#: a badly overloaded machine (control then still comes back; the ranks keep their stop request).
STOP_BUDGET_SECONDS = 10.0


def cancel(client: Any, futures: Iterable[Any]) -> None:
    """Cancel ``futures`` on the scheduler now (forgotten there; never raises).

    Examples
    --------
    >>> cancel(None, [])
    """
    futures = [f for f in futures if f is not None]
    if client is None or not futures:
        return
    with contextlib.suppress(Exception):
        client.cancel(futures, force=True)


def settle(done: Callable[[], bool], budget: float = BUDGET_SECONDS, poll: float = 0.05) -> bool:
    """Wait up to ``budget`` seconds for ``done()``; a second interrupt gives up at once.

    Examples
    --------
    >>> settle(lambda: True)
    True
    """
    deadline = time.monotonic() + budget
    with contextlib.suppress(KeyboardInterrupt):
        while not done() and time.monotonic() < deadline:
            time.sleep(poll)
    return bool(done())


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold an interrupt that arrives inside the block; it is raised when the block ends.

    For a write that must not be cut in half: a KeyboardInterrupt raised inside SQLAlchemy can
    leave a connection holding SQLite's write lock (the run's KILLED status then waits on its own
    process), and one raised inside a garbage-collection callback is printed and *lost* (the
    process never stops). Only the main thread receives signals, so elsewhere, or where SIGINT
    is ignored or left to the OS, this does nothing.

    Examples
    --------
    >>> import signal
    >>> before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a kernel
    >>> written = []
    >>> try:
    ...     with deferred():
    ...         signal.raise_signal(signal.SIGINT)   # Ctrl-C in the middle of the write
    ...         written.append("all of it")
    ... except KeyboardInterrupt:
    ...     print(written, "then KeyboardInterrupt")
    ['all of it'] then KeyboardInterrupt
    >>> _ = signal.signal(signal.SIGINT, before)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL or set outside Python: not ours to change
        yield
        return
    held: list[tuple[int, Any]] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            previous(*held[0])  # the handler that was there: KeyboardInterrupt, usually


class interruptible:  # noqa: N801 - used like a function: ``with interruptible(...)``
    """Scope of one long call: on KeyboardInterrupt, stop its work and re-raise.

    ``on_interrupt(fn)`` callbacks run first (ask training ranks to stop together), then the
    tracked futures are cancelled. Other exceptions cancel the tracked futures too (failed work
    must not keep the cluster busy). Cleanup never takes longer than needed and a second
    interrupt during it returns at once.

    Parameters
    ----------
    client : distributed.Client, optional
        The client owning the tracked futures (default: the one of the first future tracked).
    """

    def __init__(self, client: Any = None) -> None:
        self.client = client
        self.futures: list[Any] = []
        self._callbacks: list[Callable[[], Any]] = []
        self.interrupted = False

    def track(self, futures: Any) -> Any:
        """Remember futures (one, or a list) to cancel on interrupt; returns them unchanged."""
        items = futures if isinstance(futures, (list, tuple)) else [futures]
        self.futures.extend(items)
        if self.client is None:
            self.client = next((getattr(f, "client", None) for f in items), None)
        return futures

    def on_interrupt(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Run ``fn()`` when the call is interrupted, before the futures are cancelled."""
        self._callbacks.append(fn)
        return fn

    def __enter__(self) -> interruptible:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            return False
        try:
            if issubclass(exc_type, KeyboardInterrupt):
                self.interrupted = True
                for fn in self._callbacks:
                    with contextlib.suppress(Exception):
                        fn()
            cancel(self.client, self.futures)
        except KeyboardInterrupt:  # pressed again: give up cleaning, hand control back
            pass
        return False


# -- plain cells ------------------------------------------------------------------------------
def _held_keys(namespace: dict[str, Any]) -> set[Any]:
    """Keys of futures the user kept in a variable (directly, in a container or a collection)."""
    from distributed import futures_of

    held: set[Any] = set()
    for name, value in list(namespace.items()):
        if name.startswith("_") or isinstance(value, type):
            continue
        if callable(value) and not hasattr(value, "__dask_graph__"):  # functions, classes
            continue
        with contextlib.suppress(Exception):
            held.update(f.key for f in futures_of(value))
    return held


class _CellWatch:
    """IPython hooks: futures a cell created and nobody holds are cancelled when it is
    interrupted (the traceback otherwise keeps them, and their tasks, alive)."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.before: set[Any] = set()

    def _client(self) -> Any:
        if "distributed" not in sys.modules:  # no cluster work possible: stay cheap
            return None
        from mlkit.cluster import current

        handle = current()
        return handle.client if handle is not None else None

    def pre_run_cell(self, info: Any = None) -> None:
        client = self._client()
        self.before = set(client.futures) if client is not None else set()

    def post_run_cell(self, result: Any) -> None:
        if not isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt):
            return
        client = self._client()
        if client is None:
            return
        with contextlib.suppress(Exception):
            from distributed import Future

            new = set(client.futures) - self.before - _held_keys(self.shell.user_ns)
            if new:
                cancel(client, [Future(k, client) for k in new])


def install(shell: Any) -> None:
    """Register the interrupted-cell hooks on an IPython shell (once)."""
    if getattr(shell, "_mlkit_cell_watch", None) is not None:
        return
    watch = _CellWatch(shell)
    shell.events.register("pre_run_cell", watch.pre_run_cell)
    shell.events.register("post_run_cell", watch.post_run_cell)
    shell._mlkit_cell_watch = watch


def uninstall(shell: Any) -> None:
    """Remove the hooks :func:`install` registered."""
    watch = getattr(shell, "_mlkit_cell_watch", None)
    if watch is None:
        return
    with contextlib.suppress(ValueError):
        shell.events.unregister("pre_run_cell", watch.pre_run_cell)
        shell.events.unregister("post_run_cell", watch.post_run_cell)
    shell._mlkit_cell_watch = None
