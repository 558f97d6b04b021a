"""The kernel a job runs in, and the watchdog that stops it.

Papermill (through nbclient) starts the kernel; mlkit hands it a kernel-manager class so that
(1) the kernel gets the job's environment (the record file path, the mlkit home) without touching
this process's ``os.environ`` (several jobs share one Dask worker process), and (2) the watchdog
knows the kernel's process.

Why a hand-written watchdog: papermill has no whole-notebook timeout, nbclient's per-cell
``timeout`` raises without telling the notebook where it stopped, and neither can be cancelled
from outside (a sweep interrupted in the client). The watchdog does all three the same way: it
interrupts the kernel (SIGINT, so the running cell shows a ``KeyboardInterrupt`` traceback in the
output notebook) and, if the kernel is still busy after a grace period, kills its process group
(nbclient then reports a dead kernel). Either way the job ends and is classified by ``reason``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from mlkit._imports import require

# Engines are optional extras: require() names the extra to install when one is missing.
AsyncKernelManager = require("jupyter_client.manager").AsyncKernelManager

__all__ = ["Watch", "kernel_manager_class"]

# How often a job asks whether its sweep was interrupted (one tiny scheduler round trip): an
# interrupted sweep hands control back only once its running jobs have stopped.
_STOP_POLL_SECONDS = 0.25
# A ``stop_event`` is waited on instead (the scheduler answers the moment it is set): each wait
# is held this long, so a finished job's listener ends within it.
_STOP_WAIT_SECONDS = 1.0


class Watch:
    """Per-job state shared by the kernel manager, nbclient's cell hook and the watchdog thread.

    Parameters
    ----------
    env : dict
        Extra environment variables for the kernel.
    timeout : float, optional
        Seconds the job's cells may take in all, counted from the first cell. The kernel's
        start has its own bound (papermill's ``start_timeout``), so a busy machine that starts
        kernels slowly does not eat the job's time.
    cell_timeout : float, optional
        Seconds one cell may take.
    should_stop : callable, optional
        Polled about four times a second; True cancels the job.
    stop_event : object with ``wait(timeout) -> bool``, optional
        E.g. a ``distributed.Event``: a listener thread waits on it and cancels the job the
        moment it is set (no polling delay: an interrupted sweep hands control back sooner).
    grace : float
        Seconds between the interrupt and the kill.
    log_path : str, optional
        File that receives the kernel process's own stdout/stderr (start-up warnings, crash
        messages), which would otherwise interleave with the caller's output.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        timeout: float | None = None,
        cell_timeout: float | None = None,
        should_stop: Callable[[], bool] | None = None,
        stop_event: Any = None,
        grace: float = 5.0,
        log_path: str | None = None,
    ) -> None:
        self.env = dict(env)
        self.timeout = timeout
        self.cell_timeout = cell_timeout
        self.should_stop = should_stop
        self.stop_event = stop_event
        self.grace = grace
        self.log_path = log_path
        self._log: Any = None
        self.reason: str | None = None  # "timeout" | "cell_timeout" | "cancelled"
        self.cell_index: int | None = None
        self._cell_started: float | None = None
        self._process: Any = None  # the kernel's subprocess.Popen
        self._started: float | None = None  # the first cell's start (see timeout)
        self._last_poll = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._fired = threading.Lock()  # the first reason (timeout, cancel) wins

    # -- hooks -------------------------------------------------------------------------------
    def attach(self, process: Any) -> None:
        """Called by the kernel manager once the kernel process (a ``Popen``) exists."""
        self._process = process
        if self.reason == "cancelled" and self._cell_started is None:
            # Cancelled while the kernel was being started (no process to signal then): end it
            # now, or the job would run on. _stop_kernel checks the process after setting the
            # reason and this checks the reason after setting the process, so one of them sees it.
            self._signal(signal.SIGKILL)

    def on_cell_execute(self, cell: Any = None, cell_index: int | None = None, **_: Any) -> None:
        """nbclient hook: a code cell was sent to the kernel."""
        self.cell_index = cell_index
        self._cell_started = time.monotonic()
        if self._started is None:
            self._started = self._cell_started

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Watch:
        if self.timeout or self.cell_timeout or self.should_stop:
            self._thread = threading.Thread(target=self._loop, name="mlkit-job-watch", daemon=True)
            self._thread.start()
        if self.stop_event is not None:
            # Not joined in stop(): its last wait ends within _STOP_WAIT_SECONDS by itself.
            threading.Thread(target=self._listen, name="mlkit-job-cancel", daemon=True).start()
        return self

    def stop(self) -> None:
        """The job is over: end the watchdog and make sure the kernel process is gone."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._signal(signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def open_log(self) -> Any:
        """The file object the kernel's stdout/stderr go to (None: inherit ours)."""
        if self.log_path and self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        return self._log

    def describe(self) -> str:
        """Why the watchdog stopped the job, as a sentence."""
        if self.reason == "timeout":
            return f"the job ran longer than its timeout of {self.timeout:g} s"
        if self.reason == "cell_timeout":
            return f"a cell ran longer than the cell timeout of {self.cell_timeout:g} s"
        if self.reason == "cancelled":
            return "the job was cancelled"
        return ""

    def _due(self) -> str | None:
        now = time.monotonic()
        if self.timeout and self._started is not None and now - self._started > self.timeout:
            return "timeout"
        started = self._cell_started
        if self.cell_timeout and started is not None and now - started > self.cell_timeout:
            return "cell_timeout"
        if self.should_stop is not None and now - self._last_poll >= _STOP_POLL_SECONDS:
            self._last_poll = now
            try:
                if self.should_stop():
                    return "cancelled"
            except Exception:  # the scheduler went away: keep running, the job decides
                pass
        return None

    def _loop(self) -> None:
        while not self._done.wait(0.2):
            reason = self._due()
            if reason is not None:
                self._stop_kernel(reason)
                return

    def _listen(self) -> None:
        while not self._done.is_set():
            try:
                if self.stop_event.wait(_STOP_WAIT_SECONDS):
                    break
            except Exception:  # the scheduler went away: keep running, the job decides
                return
        else:
            return
        self._stop_kernel("cancelled")

    def _stop_kernel(self, reason: str) -> None:
        """Interrupt the kernel; kill it if it is still there after the grace period."""
        if self._done.is_set() or not self._fired.acquire(blocking=False):
            return
        self.reason = reason
        if reason == "cancelled" and self._cell_started is None:
            # No cell has run yet (the kernel is still starting): there is nothing to interrupt
            # or save, and a starting kernel ignores SIGINT, which cost the whole grace period
            # (an interrupted sweep handed control back about 6 s late). A kernel not yet
            # attached is killed by attach().
            self._signal(signal.SIGKILL)
            return
        self._signal(signal.SIGINT)
        if self._done.wait(self.grace):
            return
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        process = self._process
        # poll() also tells us the pid still belongs to our kernel (not reaped, not reused).
        if process is None or process.poll() is not None:
            return
        pid = process.pid
        try:
            # jupyter_client starts kernels in their own session: signal the whole group, so
            # processes the notebook started go too (as jupyter_client's own send_signal does).
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class _JobKernelManager(AsyncKernelManager):
    """A kernel manager that adds the job's environment and reports the kernel's pid."""

    watch: Watch  # set on the per-job subclass

    async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
        env = dict(kw.pop("env", None) or os.environ)
        env.update(self.watch.env)
        log = self.watch.open_log()
        if log is not None:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", subprocess.STDOUT)
        await super().start_kernel(env=env, **kw)
        self.watch.attach(getattr(self.provisioner, "process", None))

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:  # type: ignore[override]
        # A cancelled job (its sweep was interrupted) has nothing left to say: its output
        # notebook already holds the KeyboardInterrupt, so stop the kernel at once instead of
        # waiting for a graceful exit, and hand control back sooner.
        now = now or self.watch.reason == "cancelled"
        await super().shutdown_kernel(now=now, restart=restart)


def kernel_manager_class(watch: Watch) -> type[AsyncKernelManager]:
    """A kernel-manager class bound to one job's :class:`Watch` (nbclient instantiates it).

    Examples
    --------
    >>> cls = kernel_manager_class(Watch({"A": "1"}))
    >>> cls.watch.env
    {'A': '1'}
    """
    return type("JobKernelManager", (_JobKernelManager,), {"watch": watch})
