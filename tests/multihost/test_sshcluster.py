"""A real cluster manager: distributed's SSHCluster over Debian's sshd on the test hosts.

From the client host, ``mlkit.cluster.up(cluster="distributed.SSHCluster", hosts=[...])`` (and
``%mlscale up --cluster distributed.SSHCluster -o hosts=[...]``) logs in to each host with the key
the harness made, starts the scheduler on the first and a worker on each other one, reports
where the workers are and that they do not share the client's disk, runs work and a study, and
``down`` leaves no Dask process on any host.
"""

from __future__ import annotations

import sys

import _hosts
import _ssh
import pytest
from _hosts import wait_for

REMOTE = ["scheduler", "worker1", "worker2"]
HOSTS = [*REMOTE, "client"]


@pytest.fixture(scope="module")
def sshnet():
    """Own test hosts (no Dask started by the other modules' fixtures), an sshd on each."""
    reason = _hosts.why_unavailable() or _ssh.why_unavailable()
    if reason:
        pytest.fail(f"the SSHCluster tests cannot run: {reason}", pytrace=False)
    with _hosts.TestNet(HOSTS, tag="ssh") as net, _ssh.SSHHosts(net, REMOTE, "client") as ssh:
        yield net, ssh


@pytest.fixture
def client_session(sshnet):
    net, _ = sshnet
    s = _hosts.Session(net["client"])
    try:
        yield s
    finally:
        s.close()  # its atexit stops a cluster a failed test left up
        for h in REMOTE:  # and nothing of it may outlive the test (checked in the tests)
            wait_for(lambda h=h: not _ssh.dask_processes(net[h]), timeout=120,
                     what=f"the Dask processes on {h} to exit")


def _addresses(net) -> list[str]:
    return [net[h].addr for h in REMOTE]


def _assert_runs_everywhere(net) -> None:
    procs = {h: _ssh.dask_processes(net[h]) for h in REMOTE}
    assert any("distributed.Scheduler" in p for p in procs["scheduler"]), procs
    for h in ("worker1", "worker2"):
        assert any("distributed.Nanny" in p for p in procs[h]), procs


def _assert_nothing_left(net) -> None:
    """Right after down() returned: it waits for the remote processes (distributed's close
    does not), so nothing is left to wait for here."""
    left = {h: _ssh.dask_processes(net[h]) for h in REMOTE}
    assert not any(left.values()), f"Dask processes left after down() returned: {left}"


def _wait_nothing_left(net) -> None:
    for h in REMOTE:
        wait_for(lambda h=h: not _ssh.dask_processes(net[h]), timeout=120,
                 what=f"every Dask process on {h} to exit ({_ssh.dask_processes(net[h])})")


def test_up_runs_scheduler_and_workers_on_the_hosts_and_down_stops_them(sshnet, client_session):
    net, ssh = sshnet
    s = client_session
    got = s.ok(
        "import mlkit, socket, sys\n"
        "cluster = mlkit.cluster.up(cluster='distributed.SSHCluster',"
        f" hosts={_addresses(net)!r}, connect_options={ssh.connect_options!r},"
        f" remote_python={sys.executable!r}, timeout=300)\n"
        "text = str(mlkit.cluster.status())\n"
        "pf = cluster.preflight.to_dict()\n"
        "def square(x):\n"
        "    import socket\n"
        "    return x * x, socket.gethostname()\n"
        "done = cluster.client.gather(cluster.client.map(square, range(20)))\n",
        "[cluster.client.run_on_scheduler(socket.gethostname),"
        " sorted(cluster.client.run(socket.gethostname).values()), cluster.address,"
        " pf, text, sum(v for v, _ in done), sorted({h for _, h in done})]",
        timeout=240)
    sched_host, worker_hosts, address, pf, text, total, ran_on = got
    assert sched_host == "scheduler" and worker_hosts == ["worker1", "worker2"]
    assert address.startswith(f"tcp://{net['scheduler'].addr}:")  # bound to hosts[0]
    assert pf["hosts"] == ["worker1", "worker2"] and pf["client_host"] == "client"
    assert pf["shared_disk"] is False
    assert "hosts: worker1 (1 worker), worker2 (1 worker); client on client" in text
    assert "workers share the client's disk: no" in text
    assert total == sum(x * x for x in range(20)) and set(ran_on) <= {"worker1", "worker2"}
    _assert_runs_everywhere(net)

    # A study whose trials run on the SSH workers, in storage every worker reaches.
    study = s.ok(
        "def objective(trial):\n"
        "    import socket\n"
        "    trial.set_user_attr('host', socket.gethostname())\n"
        "    x = trial.suggest_float('x', -4, 4)\n"
        "    return (x - 1) ** 2\n"
        "study = mlkit.tune.tune(objective, n_trials=8, study_name='ssh', progress=False,"
        " track=False)",
        "[[t.state.name for t in study.trials], sorted({t.user_attrs['host'] for t in"
        " study.trials}), study.storage_description]", timeout=300)
    states, hosts, where = study
    assert states == ["COMPLETE"] * 8, states
    assert set(hosts) <= {"worker1", "worker2"} and "DaskStorage" in where

    # The hosts list fixes the workers: scaling is refused with the way out, the cluster intact.
    out = s.run("mlkit.cluster.scale(3)")
    assert out["type"] == "ClusterError" and "--replace" in out["message"], out
    assert s.ok("", "mlkit.cluster.status().n_workers") == 2

    assert s.ok("stopped = mlkit.cluster.down()", "stopped") is True
    _assert_nothing_left(net)


def test_the_magic_starts_it_from_the_users_ssh_config(sshnet, client_session):
    """``-o hosts=[a,b,c]`` as one types it; keys and known_hosts from the client's ~/.ssh."""
    net, _ = sshnet
    s = client_session
    line = (f"up --cluster distributed.SSHCluster -o hosts=[{','.join(_addresses(net))}]"
            " --threads 2")  # the default 120 s to wait for the workers
    got = s.ok(
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from IPython.core.error import UsageError\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'mlkit')\n"
        f"handle = ip.run_line_magic('mlscale', {line!r})\n"
        "status = str(ip.run_line_magic('mlscale', 'status'))\n"
        "try:\n"
        "    ip.run_line_magic('mlscale', 'scale 4')\n"
        "    refused = None\n"
        "except UsageError as exc:\n"
        "    refused = str(exc)\n",
        "[handle.kind, sorted(w['nthreads'] for w in"
        " ip.user_ns['client'].scheduler_info(n_workers=-1)['workers'].values()),"
        " status, refused, handle.preflight.shared_disk, handle.widget().scale_button.disabled,"
        " handle.widget().stop_button.disabled]", timeout=300)
    kind, threads, status, refused, shared, scale_off, stop_off = got
    assert kind == "manager" and threads == [2, 2]
    assert "hosts: worker1 (1 worker), worker2 (1 worker); client on client" in status
    assert shared is False
    assert scale_off is True and stop_off is False  # the widget offers no scaling, only a stop
    assert refused and refused.startswith("%mlscale scale:") and "cannot be scaled to 4" in refused
    _assert_runs_everywhere(net)
    out = s.ok("import io, contextlib\n_o = io.StringIO()\n"
               "with contextlib.redirect_stdout(_o):\n"
               "    ip.run_line_magic('mlscale', 'down')\n", "_o.getvalue()")
    assert "cluster stopped" in out
    _assert_nothing_left(net)


def test_an_unreachable_host_fails_up_with_one_error_and_leaves_nothing(sshnet, client_session):
    net, ssh = sshnet
    # 192.0.2.99 is on the bridge's subnet but no host has it: the SSH connection cannot open.
    out = client_session.run(
        "import mlkit\n"
        "mlkit.cluster.up(cluster='distributed.SSHCluster',"
        f" hosts=[{net['scheduler'].addr!r}, '192.0.2.99'],"
        f" connect_options={{**{ssh.connect_options!r}, 'connect_timeout': 5}}, timeout=60)")
    assert out["type"] == "ClusterError", out
    assert "could not start distributed.SSHCluster" in out["message"], out
    assert client_session.ok("import mlkit", "mlkit.cluster.current()") is None
    _wait_nothing_left(net)  # the scheduler it had started on the first host is gone too


def test_each_sshd_listens_only_on_its_hosts_address(sshnet):
    net, ssh = sshnet
    for h in REMOTE:
        lines = net[h].run(["ss", "-Hltnp"]).stdout.splitlines()
        mine = [line for line in lines if f"pid={ssh.pids[h]}," in line]
        assert [line.split()[3] for line in mine] == [f"{net[h].addr}:22"], lines


def test_without_sshd_the_harness_says_what_to_install(monkeypatch):
    monkeypatch.setattr(_ssh, "SSHD", "/nonexistent/sshd")
    assert _ssh.why_unavailable() == ("/nonexistent/sshd is missing: run `make system-deps` as "
                                      "root (or `apt-get install -y openssh-server`)")
