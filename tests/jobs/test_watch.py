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
