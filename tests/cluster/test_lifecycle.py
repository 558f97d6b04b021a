"""Cluster lifecycle on a real LocalCluster with worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

import mlkit
from mlkit.exceptions import ClusterError, ConfigError, NoClusterError
from tests._wait import wait_for


def _listening(pids):
    return [
        c.laddr
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]


def test_up_runs_real_work_on_worker_processes(cluster):
    st = mlkit.cluster.status()
    assert st.n_workers == 2 and st.threads == 2 and st.kind == "local"
    assert st.memory_limit == 2 * 2 * 10**9
    pids = cluster.client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert {w.pid for w in st.workers} == set(pids.values())
    fut = cluster.client.submit(sum, range(10))
    assert fut.result() == 45


def test_same_spec_returns_running_cluster_and_other_spec_refuses(cluster):
    assert mlkit.cluster.up(workers=2, threads_per_worker=1, memory_limit="2GB") is cluster
    assert mlkit.cluster.up() is cluster  # nothing asked for: whatever runs
    with pytest.raises(ClusterError, match=r"down\(\) .* first, or pass replace=True"):
        mlkit.cluster.up(workers=3)
    assert mlkit.cluster.current() is cluster and cluster.client.submit(int, "7").result() == 7


def test_get_client_is_the_active_cluster_client(cluster):
    assert mlkit.cluster.get_client() is cluster.client


def test_only_loopback_sockets_are_opened(cluster):
    me = psutil.Process()
    pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
    addrs = _listening(pids)
    assert addrs, "the scheduler should listen somewhere"
    assert all(a.ip in ("127.0.0.1", "::1") for a in addrs), addrs


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"workers": -1}, "workers must be a positive integer, but got workers=-1"),
        ({"workers": "two"}, "workers must be a positive integer, but got workers='two'"),
        ({"threads_per_worker": 0},
         "threads_per_worker must be a positive integer, but got threads_per_worker=0"),
        ({"memory_limit": "lots"}, "memory_limit='lots' is not a size"),
        ({"cluster": "SLURMCluster"}, "dotted class path"),
    ],
)
def test_bad_arguments_fail_before_starting_anything(kwargs, text):
    before = mlkit.cluster.current()
    with pytest.raises(ConfigError, match=pytest.importorskip("re").escape(text)):
        mlkit.cluster.up(**kwargs)
    assert mlkit.cluster.current() is before


def test_unimportable_manager_class_is_a_clear_error():
    with pytest.raises(
        ClusterError, match="cannot import cluster manager 'no_such_pkg.SLURMCluster'"
    ):
        mlkit.cluster.up(cluster="no_such_pkg.SLURMCluster", replace=True)


def test_scale_status_and_killed_worker_is_replaced(fresh_cluster):
    st = mlkit.cluster.scale(3)
    assert st.n_workers == 3
    st = mlkit.cluster.scale(2)
    assert st.n_workers == 2
    victim = st.workers[0].pid
    os.kill(victim, signal.SIGKILL)

    def replaced():
        st = mlkit.cluster.status()
        pids = {w.pid for w in st.workers}
        return st if st.n_workers == 2 and victim not in pids and None not in pids else None

    st = wait_for(replaced, what="the killed worker replaced")
    assert st.n_workers == 2 and victim not in {w.pid for w in st.workers}
    assert fresh_cluster.client.submit(sum, [1, 2]).result() == 3


def test_scaling_down_then_up_again_keeps_the_new_worker(fresh_cluster):
    # distributed closes the worker holding a removed worker's *name* lost-worker-timeout after
    # the removal unless that name re-registered: a reused name lost its new worker, and scale
    # waited for it forever (the scaling report hung in CI). A short timeout makes the late
    # check fire while each new worker is still starting.
    import dask

    with dask.config.set({"distributed.deploy.lost-worker-timeout": "3s"}):
        names = set()
        for _ in range(2):
            assert mlkit.cluster.scale(1, timeout=60).n_workers == 1
            st = mlkit.cluster.scale(2, timeout=60)
            assert st.n_workers == 2
            names |= set(fresh_cluster.deploy.workers)
        # each removal's late check fired while the new worker was still starting (a worker
        # takes seconds to start): the new workers' processes are still running
        assert all(p.process.returncode is None for p in fresh_cluster.deploy.workers.values())
        assert mlkit.cluster.status().n_workers == 2
        assert len(names) == 3, names  # 0, then a fresh name for each new worker
        assert fresh_cluster.client.submit(sum, [1, 2]).result() == 3


def test_down_leaves_no_worker_process_behind():
    mlkit.cluster.down()
    c = mlkit.cluster.up(workers=2, threads_per_worker=1, memory_limit="1GB")
    procs = [psutil.Process(p) for p in c.client.run(os.getpid).values()]
    procs += [psutil.Process(p) for p in (w.pid for w in c.status().workers) if p]
    nannies = {p.parent() for p in procs} - {None, psutil.Process()}
    assert mlkit.cluster.down() is True
    gone, alive = psutil.wait_procs(procs + list(nannies), timeout=30)
    assert not alive
    assert mlkit.cluster.current() is None
    assert mlkit.cluster.down() is False
    with pytest.raises(NoClusterError, match=r"mlkit.cluster.up\(\)"):
        mlkit.cluster.status()


def test_replace_starts_a_new_cluster(cluster):
    old = cluster
    new = mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit="1GB", replace=True)
    assert old.closed and not new.closed and new.status().n_workers == 1
    mlkit.cluster.down()


def test_cluster_manager_class_path_is_built_and_scaled():
    c = mlkit.cluster.up(
        workers=1,
        cluster="distributed.LocalCluster",
        replace=True,
        n_workers=0,
        threads_per_worker=1,
        memory_limit="1GB",
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        assert c.kind == "manager" and c.status().n_workers == 1
        assert mlkit.cluster.scale(2).n_workers == 2
    finally:
        mlkit.cluster.down()


def test_connect_joins_a_scheduler_started_by_hand(tmp_path):
    mlkit.cluster.down()
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    sched = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(tmp_path / "s.json"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        wait_for((tmp_path / "s.json").exists, what="the scheduler file")
        import json

        address = json.loads((tmp_path / "s.json").read_text())["address"]
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--memory-limit",
                "1GB",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        c = mlkit.cluster.connect(address)
        c.client.wait_for_workers(1, timeout=60)
        assert c.kind == "remote" and mlkit.cluster.status().n_workers == 1
        assert c.client.submit(pow, 2, 10).result() == 1024
        assert mlkit.cluster.connect(address) is c
        with pytest.raises(ClusterError, match="joined by address"):
            mlkit.cluster.scale(2)
        mlkit.cluster.down()
        assert sched.poll() is None, "leaving a joined cluster must not kill its scheduler"
    finally:
        mlkit.cluster.down()
        for p in (worker, sched):
            if p is not None:
                p.terminate()
                p.wait(30)


@pytest.mark.parametrize(
    "address", ["localhost", "tcp://host", "tcp://127.0.0.1:99999", "http:/x:1"]
)
def test_malformed_address_is_rejected(address):
    with pytest.raises(ConfigError, match="is not a scheduler address"):
        mlkit.cluster.connect(address)


def test_unreachable_scheduler_fails_fast():
    mlkit.cluster.down()
    with pytest.raises(ClusterError, match="could not reach a Dask scheduler at tcp://127.0.0.1:1"):
        mlkit.cluster.connect("tcp://127.0.0.1:1", timeout=2)
    assert mlkit.cluster.current() is None
