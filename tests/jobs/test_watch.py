"""The job watchdog's clock and its cancel path (no kernel needed: they decide *when* to stop)."""

from __future__ import annotations

import threading
import time

from mlkit.jobs._watch import Watch
from tests._wait import wait_for


def test_the_job_timeout_counts_from_the_first_cell_not_from_the_kernel_start():
    # A busy machine may take longer than the whole timeout to start a kernel; that time is
    # bounded by papermill's start_timeout instead, so the job still stops in its cell.
    watch = Watch({}, timeout=0.3)
    time.sleep(0.5)  # "the kernel starts slowly": longer than the timeout itself
    assert watch._due() is None
    watch.on_cell_execute(cell_index=0)
    assert watch._due() is None
    wait_for(lambda: watch._due() == "timeout", timeout=10, what="the job timeout")


def test_a_stop_event_cancels_the_job_as_soon_as_it_is_set():
    stop = threading.Event()  # a distributed.Event in a sweep: anything with wait(timeout)
    watch = Watch({}, stop_event=stop).start()
    try:
        watch.on_cell_execute(cell_index=2)
        assert watch.reason is None
        stop.set()
        wait_for(lambda: watch.reason == "cancelled", timeout=10, what="the cancel")
        assert "cancelled" in watch.describe()
    finally:
        watch.stop()


def test_a_finished_job_is_not_cancelled_afterwards():
    stop = threading.Event()
    watch = Watch({}, stop_event=stop).start()
    watch.stop()
    stop.set()
    for t in threading.enumerate():  # the listener sees the event, then must stand down
        if t.name == "mlkit-job-cancel":
            t.join(10)
    assert watch.reason is None


def _sleeper():
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            start_new_session=True)


def test_a_job_cancelled_before_its_first_cell_is_killed_without_the_grace_period():
    # A starting kernel ignores SIGINT: waiting out the grace made an interrupted sweep hand
    # control back about 5 s late whenever one of its jobs had not reached its first cell.
    proc = _sleeper()
    stop = threading.Event()
    watch = Watch({}, stop_event=stop, grace=300).start()
    watch.attach(proc)
    try:
        stop.set()
        wait_for(lambda: proc.poll() is not None, timeout=30, what="the kernel killed")
        assert proc.returncode == -9 and watch.reason == "cancelled"
    finally:
        watch.stop()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_job_cancelled_while_its_kernel_process_is_being_made_is_killed_when_it_appears():
    # The cancel can land before the kernel manager knows the process: with nothing to signal
    # then, the job used to run on to its end.
    stop = threading.Event()
    watch = Watch({}, stop_event=stop, grace=300).start()
    proc = None
    try:
        stop.set()
        wait_for(lambda: watch.reason == "cancelled", timeout=10, what="the cancel")
        proc = _sleeper()
        watch.attach(proc)
        wait_for(lambda: proc.poll() is not None, timeout=30, what="the late kernel killed")
        assert proc.returncode == -9
    finally:
        watch.stop()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_job_cancelled_in_a_cell_is_interrupted_first():
    # Once a cell runs, the cancel is a SIGINT so the output notebook shows where it stopped.
    import signal
    import subprocess
    import sys

    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, lambda *a: sys.exit(7))\n"
            "print('ready', flush=True)\ntime.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    stop = threading.Event()
    watch = Watch({}, stop_event=stop, grace=300).start()
    watch.attach(proc)
    watch.on_cell_execute(cell_index=1)
    try:
        stop.set()
        wait_for(lambda: proc.poll() is not None, timeout=30, what="the interrupted kernel")
        assert proc.returncode == 7, signal.Signals(-proc.returncode) if proc.returncode < 0 else 0
    finally:
        watch.stop()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
