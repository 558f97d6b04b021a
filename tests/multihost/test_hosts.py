"""The test hosts themselves: separate disks, separate names, one network."""

from __future__ import annotations


def test_hosts_have_private_disks_and_names_but_share_a_network(net, scheduler, session):
    client, w1 = net["client"], net["worker1"]
    session.ok("open('/tmp/work/only-on-client', 'w').write('x')")
    assert client.read_file("/tmp/work/only-on-client") == b"x"
    assert w1.read_file("/tmp/work/only-on-client") is None
    assert w1.run(["hostname"]).stdout.strip() == "worker1"
    info = session.ok(
        "import distributed, socket\n"
        f"_c = distributed.Client({scheduler!r})\n"
        "_hosts = _c.run(socket.gethostname)\n_c.close()", "sorted(_hosts.values())")
    assert info == ["worker1", "worker2"]
    # Only the documentation range and loopback: no route anywhere else.
    routes = client.run(["ip", "-4", "route"]).stdout
    assert routes.strip().splitlines() == ["192.0.2.0/24 dev eth0 proto kernel scope link src "
                                           "192.0.2.13"], routes


def test_teardown_after_a_failure_leaves_nothing_behind():
    import subprocess

    import _hosts
    import pytest

    net = _hosts.TestNet(["a", "b"], tag="t")
    with pytest.raises(RuntimeError, match="boom"), net:
        proc = net["a"].popen(["sleep", "300"], name="sleeper")
        assert net["b"].run(["hostname"]).stdout.strip() == "b"
        raise RuntimeError("boom")
    assert proc.poll() is not None
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert net.prefix not in left
    assert not net.run_dir.exists()
    with open("/proc/self/mountinfo") as f:
        assert str(net.run_dir) not in f.read()


def test_without_root_the_harness_says_why(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    here = str(Path(__file__).parent)
    code = (f"import sys; sys.path.insert(0, {here!r}); import _hosts; "
            "print(_hosts.why_unavailable())")
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert "needs root" in out.stdout, out.stderr
