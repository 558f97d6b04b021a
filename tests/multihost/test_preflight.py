"""connect() finds out for real what the workers on other hosts can reach."""

from __future__ import annotations


def test_connect_probes_hosts_and_disk_even_where_the_folder_exists_everywhere(
        net, scheduler, session):
    # Identical machines: the client's preflight folder exists on every worker host too.
    for h in ("worker1", "worker2"):
        net[h].run(["mkdir", "-p", "/tmp/work/.mlkit/preflight"])
    pf = session.ok(
        "import mlkit\n"
        f"c = mlkit.cluster.connect({scheduler!r}, replace=True)\n"
        "text = str(mlkit.cluster.status())\n"
        "html = c._repr_html_()",
        "c.preflight.to_dict()")
    assert pf["hosts"] == ["worker1", "worker2"] and pf["client_host"] == "client"
    assert pf["shared_disk"] is False
    assert pf["store"] is None
    assert any("MLKIT_STORE" in m for m in pf["missing"])
    assert any("tracking server" in m and "--allowed-hosts" in m for m in pf["missing"])
    assert 0 < pf["seconds"] < 30
    text = session.ok("", "text")
    assert "hosts: worker1 (1 worker), worker2 (1 worker); client on client" in text
    assert "workers share the client's disk: no" in text
    assert "missing: a shared store" in text
    html = session.ok("", "html")
    assert "share the client's disk: <b>no</b>" in html
    # The probe leaves no file behind on the client.
    assert session.ok("import os", "os.listdir('/tmp/work/.mlkit/preflight')") == []
