"""The connect preflight on one machine: a scheduler joined by address shares the disk."""

from __future__ import annotations

import socket

import distributed

import mlkit


def test_connect_to_a_scheduler_on_this_machine_finds_a_shared_disk():
    mlkit.cluster.down()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as lc:
        c = mlkit.cluster.connect(lc.scheduler_address)
        try:
            pf = c.preflight
            assert pf.shared_disk and not pf.remote and pf.missing == []
            assert pf.hosts == [socket.gethostname()]
            assert "workers share the client's disk: yes" in str(c.status())
            # Nothing is refused when the workers share the disk.
            from mlkit.cluster._preflight import place

            assert place("/some/local/path", "data") == ("/some/local/path", None)
        finally:
            mlkit.cluster.down()


def test_a_local_cluster_is_not_probed(cluster):
    assert cluster.preflight.probed is False and cluster.preflight.shared_disk
    assert cluster.status().preflight is None


def test_up_joins_the_scheduler_dask_scheduler_address_names(monkeypatch):
    mlkit.cluster.down()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as lc:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", lc.scheduler_address)
        try:
            c = mlkit.cluster.up(workers=2, threads_per_worker=1)
            assert c.kind == "remote" and c.address == lc.scheduler_address
            assert c.deploy is None and len(c.client.scheduler_info()["workers"]) == 1
            # The same notebook line again returns the joined cluster.
            assert mlkit.cluster.up(workers=2, threads_per_worker=1) is c
        finally:
            mlkit.cluster.down()
        assert lc.status.name == "running"  # leaving a joined cluster never stops it
