"""Dask-CUDA's cluster is a ``LocalCluster`` whose worker processes are the kernel's children;
mlkit gives it the :mod:`mlkit.cluster._isolate` preload. Checked here on a CPU ``LocalCluster``
with the same preload in a real kernel (Dask-CUDA itself needs a GPU: tests/cluster/
test_cuda_cluster.py checks the process groups there): Interrupt keeps the workers, and a kernel
killed outright still takes them with it."""

from __future__ import annotations

import json

import psutil
import pytest

from tests._wait import wait_for

pytestmark = pytest.mark.slow

START = (
    "from distributed import LocalCluster, Client\n"
    "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,"
    " dashboard_address=None, preload=[{preload!r}])\n"
    "client = Client(cluster)\n"
    "import json, os; print(json.dumps(sorted(client.run(os.getpid).values())))"
)


def _alive(pids):
    out = []
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_interrupt_keeps_preloaded_workers_and_a_killed_kernel_takes_them_along(bare_kernel):
    k = bare_kernel
    pids = json.loads(k.ok(START.format(preload="mlkit.cluster._isolate"), timeout=300)
                      .strip().splitlines()[-1])
    assert len(pids) == 2
    reply = k.interrupt_during("print('go', flush=True); import time; time.sleep(60)",
                               lambda out: "go" in out, what="the sleep")
    assert reply.ename == "KeyboardInterrupt"
    assert _alive(pids) == pids
    again = json.loads(k.ok("print(json.dumps(sorted(client.run(os.getpid).values())))")
                       .strip().splitlines()[-1])
    assert again == pids  # the same two worker processes still take work
    # No orphans: the workers end with their nanny, i.e. with the kernel's process.
    k.km.provisioner.process.kill()
    wait_for(lambda: not _alive(pids), timeout=120, what="the workers to end with the kernel")


def test_without_the_preload_interrupt_kills_the_workers(bare_kernel):
    # The failure the preload exists for (what a Dask-CUDA cluster did before): if this ever
    # stops failing the preload is no longer needed.
    k = bare_kernel
    pids = json.loads(k.ok(START.replace(", preload=[{preload!r}]", ""), timeout=300)
                      .strip().splitlines()[-1])
    k.interrupt_during("print('go', flush=True); import time; time.sleep(60)",
                       lambda out: "go" in out, what="the sleep")
    wait_for(lambda: len(_alive(pids)) < 2, timeout=60, what="a worker killed by the Interrupt")
