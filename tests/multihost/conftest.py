"""Test hosts for the multi-host tests: built once per session, torn down at its end.

Hosts: ``scheduler`` (the Dask scheduler), ``worker1`` and ``worker2`` (one Dask worker each) and
``client`` (where the notebook's code runs, in a :class:`_hosts.Session`). No two share a disk.
Where the hosts cannot be built, every test here FAILS with the reason: a missing capability must
never pass as a green suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _hosts  # noqa: E402

WORKER_HOSTS = ("worker1", "worker2")


@pytest.fixture(scope="session")
def net():
    reason = _hosts.why_unavailable()
    if reason:
        pytest.fail(f"the multi-host tests cannot build their test hosts: {reason}",
                    pytrace=False)
    with _hosts.TestNet(["scheduler", *WORKER_HOSTS, "client"]) as n:
        yield n


@pytest.fixture(scope="session")
def scheduler(net):
    """``tcp://192.0.2.10:8786``, with one worker on each worker host."""
    address = net.start_scheduler("scheduler")
    for h in WORKER_HOSTS:
        net.start_worker(h, address)
    return address


@pytest.fixture(scope="session")
def session(net, scheduler):
    """A Python session on the client host (like a notebook kernel), mlkit imported."""
    s = _hosts.Session(net["client"])
    try:
        s.ok(f"import mlkit, distributed\n"
             f"_c = distributed.Client({scheduler!r}, timeout='30s')\n"
             f"_c.wait_for_workers(2, timeout=90)\n_c.close()", timeout=150)
        yield s
    finally:
        s.close()
