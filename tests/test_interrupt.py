"""mlkit._interrupt on a real cluster: an interrupted call (or cell) leaves nothing running on the
scheduler. The real-kernel cases (the Interrupt button itself) are in tests/kernel/."""

from __future__ import annotations

import threading

import pytest

from mlkit._interrupt import interruptible
from tests._stop import press_stop
from tests._wait import wait_for


def _slow(i):
    import time

    for _ in range(100):
        time.sleep(0.05)
    return i


def _tasks(dask_scheduler):
    return {str(k): ts.state for k, ts in dask_scheduler.tasks.items()}


def _interrupt_when(cond):
    """Like the stop button: KeyboardInterrupt in the main thread once ``cond()`` holds."""

    def run():
        wait_for(cond, timeout=120, what="work under way")
        press_stop()

    threading.Thread(target=run, daemon=True).start()


def _processing(client):
    return client.run_on_scheduler(
        lambda dask_scheduler: sum(len(w.processing) for w in dask_scheduler.workers.values())
    )


def test_an_interrupted_call_cancels_its_futures_and_runs_its_stop_callbacks(client):
    stopped = []
    _interrupt_when(lambda: _processing(client) > 0)
    with pytest.raises(KeyboardInterrupt):
        with interruptible(client) as scope:
            scope.on_interrupt(lambda: stopped.append(True))
            futures = scope.track(client.map(_slow, range(6), pure=False))
            client.gather(futures)
    assert stopped == [True] and scope.interrupted
    wait_for(lambda: not client.run_on_scheduler(_tasks), timeout=60, what="no task left")
    assert client.submit(sum, [1, 2]).result(timeout=60) == 3


def test_a_failing_call_cancels_its_other_futures_too(client):
    def boom():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        with interruptible(client) as scope:
            slow = scope.track(client.map(_slow, range(4), pure=False))
            scope.track(client.submit(boom)).result()
    assert not scope.interrupted and all(f.cancelled() for f in slow)
    wait_for(lambda: not client.run_on_scheduler(_tasks), timeout=60, what="no task left")


def test_an_interrupted_cell_does_not_leave_its_task_on_the_scheduler(shell, client):
    shell.user_ns["client"] = client
    shell.user_ns["_slow"] = _slow
    shell.run_cell("kept = client.submit(_slow, 1, pure=False)")
    _interrupt_when(lambda: _processing(client) >= 2)  # the kept task and this cell's
    result = shell.run_cell("client.submit(_slow, 2, pure=False).result()")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    # the traceback still references the cell's future; mlkit cancelled it all the same,
    # while the future the user kept in a variable stays
    wait_for(
        lambda: [k for k in client.run_on_scheduler(_tasks) if k.startswith("_slow")]
        == [shell.user_ns["kept"].key],
        timeout=60,
        what="only the kept future left",
    )
    assert shell.user_ns["kept"].result(timeout=60) == 1
    del shell.user_ns["kept"]


# -- deferred: a write is never cut in half ------------------------------------------------------
def test_an_interrupt_inside_a_deferred_block_comes_when_the_block_ends():
    import signal

    from mlkit._interrupt import deferred

    # Python's own Ctrl-C handler, as a kernel or a terminal has it (a job started in the
    # background of a script, as CI may run this, inherits SIGINT ignored instead).
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        steps = []
        with pytest.raises(KeyboardInterrupt):
            with deferred():
                signal.raise_signal(signal.SIGINT)
                steps.append("after the signal")  # still runs: the interrupt waits for the end
            steps.append("after the block")  # never: the interrupt is raised as the block ends
        assert steps == ["after the signal"]
        # Ctrl-C works as before afterwards
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)


def test_a_deferred_block_where_sigint_is_ignored_leaves_it_ignored():
    import signal

    from mlkit._interrupt import deferred

    outer = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred():
            signal.raise_signal(signal.SIGINT)  # ignored, as before: nothing held, nothing raised
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outer)


def test_a_deferred_block_off_the_main_thread_changes_nothing():
    import signal

    from mlkit._interrupt import deferred

    seen = []

    def run():
        with deferred():  # signal.signal would raise ValueError here
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [signal.getsignal(signal.SIGINT)]
