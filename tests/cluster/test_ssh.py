"""distributed's SSHCluster through mlkit.cluster.up: the options it gets, the errors it gives.

The real thing (sshd on other hosts) runs in tests/multihost/test_sshcluster.py.
"""

from __future__ import annotations

import socket

import pytest

import mlkit
from mlkit.cluster import plan
from mlkit.exceptions import ClusterError, ConfigError

HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_mlkit_options_become_worker_and_scheduler_options():
    p = plan(cluster="distributed.SSHCluster", hosts=HOSTS, workers=4, threads_per_worker=2,
             memory_limit="1GB", dashboard=False, connect_options={"port": 2222})
    assert p.kind == "manager" and p.cluster_class == "distributed.SSHCluster"
    assert p.workers == 4 and p.scalable is False  # 2 per worker host, never scaled
    assert p.kwargs == {
        "hosts": HOSTS,
        "worker_options": {"nthreads": 2, "memory_limit": "1GB", "n_workers": 2},
        "scheduler_options": {"host": "10.0.0.1", "dashboard": False},
        "connect_options": {"port": 2222},
    }
    # Nothing SSHCluster would hand to its deprecated implementation is left at the top.
    assert not {"memory_limit", "nthreads", "n_workers", "threads_per_worker"} & set(p.kwargs)


def test_defaults_one_worker_per_host_and_the_users_own_options_win():
    p = plan(cluster="dask.distributed.SSHCluster", hosts="10.0.0.1, 10.0.0.2", dashboard=True,
             nthreads=3, scheduler_options={"port": 8786, "interface": "eth1"},
             worker_options={"nthreads": 5})
    assert p.workers == 1 and p.kwargs["hosts"] == ["10.0.0.1", "10.0.0.2"]
    assert p.kwargs["worker_options"] == {"nthreads": 5}
    # interface= chosen: no host= beside it (Dask refuses both); the dashboard on hosts[0].
    assert p.kwargs["scheduler_options"] == {"port": 8786, "interface": "eth1",
                                             "dashboard_address": "10.0.0.1:0"}


@pytest.mark.parametrize("kwargs, text", [
    ({}, "SSHCluster needs hosts=[SCHEDULER_HOST, WORKER_HOST, ...]"),
    ({"hosts": ["10.0.0.1"]}, "but got hosts=['10.0.0.1']"),
    ({"hosts": ["10.0.0.1", 7]}, "but got hosts=['10.0.0.1', 7]"),
    ({"hosts": HOSTS, "workers": 3}, "workers=3 cannot be spread over the 2 worker host(s)"),
    ({"hosts": HOSTS, "ssh_username": "me"}, "ssh_username belong to the removed SSHCluster API"),
    ({"hosts": HOSTS, "worker_options": "nthreads=2"}, "worker_options must be a dict"),
    ({"hosts": HOSTS, "worker_options": {"n_workers": 0}},
     "n_workers must be a positive integer, but got n_workers=0; it counts workers per host"),
])
def test_options_that_cannot_work_are_refused_before_anything_starts(kwargs, text):
    with pytest.raises(ConfigError) as info:
        plan(cluster="distributed.SSHCluster", **kwargs)
    assert text in str(info.value)


def test_a_host_without_sshd_fails_up_with_what_to_check():
    mlkit.cluster.down()
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError) as info:
        mlkit.cluster.up(cluster="distributed.SSHCluster", hosts=["127.0.0.1", "127.0.0.1"],
                         connect_options={"port": port, "known_hosts": None}, timeout=30)
    text = str(info.value)
    assert text.startswith("could not start distributed.SSHCluster:") and str(port) in text
    assert "runs sshd" in text and "connect_options=" in text
    assert mlkit.cluster.current() is None
