"""The record of running servers knows its processes by their start ticks, not the wall clock.

Linux recomputes the boot time (and so psutil's ``create_time()``) from the wall clock on every
read: after an NTP correction or a resumed VM it reads a second off. CI saw a live scoring
server dropped from the record that way (``%mlscale serve stop --all``: "no servers were
running" while it still ran).
"""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                            start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _entry(proc, **extra):
    from mlkit.serve import _running

    return {"name": "s", "pid": proc.pid, "pgid": proc.pid, **_running.identity(proc.pid),
            **extra}


def test_a_live_server_stays_alive_when_the_wall_clock_moves(sleeper, mlkit_home):
    from mlkit.serve import _running

    entry = _entry(sleeper)
    assert isinstance(entry["start_ticks"], int)
    moved = {**entry, "create_time": entry["create_time"] - 1.0}  # boot time read 1 s later
    _running.add(moved)
    assert _running.is_alive(moved)
    assert "s" in _running.read()  # not pruned from the file


def test_another_process_on_a_recorded_pid_is_not_the_server(sleeper, mlkit_home):
    from mlkit.serve import _running

    entry = _entry(sleeper)
    reused = {**entry, "start_ticks": entry["start_ticks"] - 1}  # the pid was given out again
    assert _running.group_members(reused) == []
    _running.add(reused)
    assert _running.read() == {}


def test_an_entry_from_before_start_ticks_still_matches_by_wall_clock(sleeper, mlkit_home):
    from mlkit.serve import _running

    entry = _entry(sleeper)
    del entry["start_ticks"]
    assert _running.is_alive(entry)
    assert not _running.is_alive({**entry, "create_time": entry["create_time"] - 3600})


def test_a_server_that_exited_is_pruned(mlkit_home):
    from mlkit.serve import _running

    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    entry = _entry(proc)
    proc.wait()
    _running.add(entry)
    assert _running.read() == {}
