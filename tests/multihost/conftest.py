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
HOSTS = ["scheduler", *WORKER_HOSTS, "client"]
S3_PORT = 5000
# Every host is configured for the object store (moto's S3 server on the scheduler host), the
# way real hosts have their cloud credentials; mlkit sends the workers nothing but URLs.
HOST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": f"http://{_hosts.SUBNET}.10:{S3_PORT}",
}


@pytest.fixture(scope="session")
def net():
    reason = _hosts.why_unavailable()
    if reason:
        pytest.fail(f"the multi-host tests cannot build their test hosts: {reason}",
                    pytrace=False)
    with _hosts.TestNet(HOSTS, env=HOST_ENV) as n:
        yield n


@pytest.fixture(scope="session")
def s3(net):
    """moto's S3 server on the scheduler host with a bucket ``mlkit``: its endpoint URL."""
    return _hosts.start_moto(net["scheduler"], S3_PORT, "mlkit")


@pytest.fixture(scope="session")
def scheduler(net, s3):
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
