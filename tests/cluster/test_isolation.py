"""The local cluster's processes are out of the kernel's reach: their own session (Interrupt is
SIGINT to the kernel's process group), their output in log files (readable with
``mlkit.cluster.logs`` / ``%mlscale logs``), and gone when the process that started them dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

import mlkit
from mlkit.exceptions import ConfigError
from tests._wait import wait_for


def _cluster_pids(c):
    return c.deploy.pids()


def test_every_cluster_process_is_in_a_session_of_its_own(cluster):
    pids = _cluster_pids(cluster)
    # scheduler + 2 nannies + 2 worker processes (at least)
    assert len(pids) >= 5
    mine = os.getsid(0)
    assert all(os.getsid(p) != mine for p in pids), [(p, os.getsid(p)) for p in pids]
    # ... so a SIGINT to this process's group (what jupyter_client sends) cannot reach them
    assert all(os.getpgid(p) != os.getpgrp() for p in pids)


def test_worker_output_goes_to_the_log_not_to_the_notebook(cluster, capfd):
    marker = "mlkit-noise-check-7f3a"

    def noisy():
        print(marker, flush=True)
        print(marker + "-stderr", file=sys.stderr, flush=True)
        return 1

    capfd.readouterr()
    addr = sorted(cluster.client.scheduler_info()["workers"])[0]
    assert cluster.client.submit(noisy, workers=[addr], pure=False).result() == 1
    text = wait_for(
        lambda: (t := mlkit.cluster.logs(addr)) and marker + "-stderr" in t and t,
        what="the task's print in the worker's log",
    )
    assert marker in text and addr in text.splitlines()[0]
    seen = capfd.readouterr()
    assert marker not in seen.out and marker not in seen.err
    # every worker by default; the scheduler on request
    everything = mlkit.cluster.logs(n=1000)
    assert everything.count("== worker ") == 2 and marker in everything
    assert mlkit.cluster.logs("scheduler").startswith("== scheduler")


def test_logs_rejects_an_unknown_worker(cluster):
    with pytest.raises(ConfigError, match=r"worker='nope' is not a process of this cluster"):
        mlkit.cluster.logs("nope")
    with pytest.raises(ConfigError, match="n must be a positive number of lines"):
        mlkit.cluster.logs(n=0)


def test_logs_magic_prints_them(shell, cluster, capsys):
    shell.run_line_magic("mlscale", "logs 0 -n 5")
    out = capsys.readouterr().out
    assert out.startswith("== worker 0") and len(out.strip().splitlines()) <= 6


def test_a_killed_parent_leaves_no_cluster_process_behind(tmp_path):
    """A crashed kernel: its cluster's processes notice and end (no orphans)."""
    script = textwrap.dedent(
        """
        import json, os, sys, time
        import mlkit
        c = mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit="1GB")
        print(json.dumps(c.deploy.pids()), flush=True)
        time.sleep(600)
        """
    )
    env = {**os.environ, "MLKIT_HOME": str(tmp_path / "home"), "MLKIT_DASHBOARD": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        pids = json.loads(proc.stdout.readline())
        assert len(pids) >= 3
        procs = [psutil.Process(p) for p in pids]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def all_gone():
        return not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    wait_for(all_gone, timeout=60, what="the cluster's processes to end after their parent")


def test_up_without_a_memory_limit_shares_the_machines_memory():
    """`%mlscale up --workers 2` with no --memory: LocalCluster's "auto" rule, no error."""
    import mlkit

    mlkit.cluster.down()
    try:
        st = mlkit.cluster.up(workers=1, threads_per_worker=1).status()
        assert st.n_workers == 1 and st.workers[0].memory_limit > 0
    finally:
        mlkit.cluster.down()
