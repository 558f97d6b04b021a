"""Data on a cluster whose workers do not share the client's disk."""

from __future__ import annotations

import pytest


@pytest.fixture
def remote(session, scheduler):
    """The client session joined to the remote scheduler (no shared store set)."""
    session.ok(f"import os, mlkit\nmlkit.config.set_store(None)\n"
               f"cluster = mlkit.cluster.connect({scheduler!r})")
    yield session
    session.ok("mlkit.config.set_store(None)")


def _refused(session, code):
    out = session.run(code)
    assert not out["ok"], f"expected a refusal, but it ran: {out}"
    assert out["type"] == "ClientOnlyPathError", out["traceback"]
    assert "DataError" in out["bases"] and "ConfigError" in out["bases"]
    return out["message"]


def test_client_only_paths_are_refused_up_front(remote, net):
    msg = _refused(remote, "mlkit.data.synthetic('/tmp/work/data/syn', rows=1000)")
    assert "'/tmp/work/data/syn' is on the client's disk only" in msg
    assert "worker1, worker2" in msg and "s3://" in msg and "MLKIT_STORE" in msg
    # Nothing was written, anywhere (not even a staging folder on the client).
    for h in ("client", "worker1", "worker2"):
        assert "data" not in net[h].run(["ls", "-A", "/tmp/work"]).stdout.split(), h
    # A file that exists on the client: refused at read(), not a lazy frame failing later.
    remote.ok("import pandas as pd\npd.DataFrame({'a': [1, 2]}).to_csv('/tmp/work/t.csv')")
    assert "'/tmp/work/t.csv'" in _refused(remote, "mlkit.data.read('/tmp/work/t.csv')")
    assert "'relative/out'" in _refused(
        remote, "mlkit.data.write(pd.DataFrame({'a': [1]}), 'relative/out')")
    # The mlkit home itself, even though the same folder exists on every worker host.
    home_path = "os.path.join(os.environ['MLKIT_HOME'], 'data')"
    assert "/tmp/work/.mlkit/data" in _refused(remote, f"mlkit.data.synthetic({home_path})")


def test_data_on_s3_is_written_and_read_by_the_remote_workers(remote, net):
    n = remote.ok(
        "p = mlkit.data.synthetic('s3://mlkit/data/syn', rows=20_000, features=4, partitions=4,"
        " progress=False)\n"
        "ddf = mlkit.data.read(p)\n"
        "out = mlkit.data.write(ddf[ddf.f0 > 0], 's3://mlkit/data/positive', progress=False)",
        "[len(ddf), len(mlkit.data.read(out)), p]")
    assert n[0] == 20_000 and 0 < n[1] < 20_000 and n[2] == "s3://mlkit/data/syn"
    # The parts really are in the object store (seen from another host).
    listing = net["scheduler"].python(
        "import s3fs; print(sorted(s3fs.S3FileSystem().ls('mlkit/data/syn')))").stdout
    assert listing.count("part.") == 4


def test_the_mlkit_home_maps_to_the_shared_store(remote):
    got = remote.ok(
        "mlkit.config.set_store('s3://mlkit/store')\n"
        "local = os.path.join(os.environ['MLKIT_HOME'], 'data')\n"
        "p = mlkit.data.synthetic(local, rows=5_000, features=3, partitions=2, progress=False)\n"
        "pf = cluster.preflight",
        "[p, len(mlkit.data.read(local)), pf.store_shared, pf.missing,"
        " str(mlkit.cluster.status())]")
    assert got[0] == "s3://mlkit/store/data" and got[1] == 5_000
    assert got[2] is True and not any("shared store" in m for m in got[3])
    assert "data, checkpoints, logs, job outputs: s3://mlkit/store" in got[4]


def test_a_folder_every_host_mounts_passes_the_same_probe(remote, net):
    shared = net.run_dir / "shared"  # /run/mlk-<pid>/shared is one folder for all hosts
    shared.mkdir(exist_ok=True)
    n = remote.ok(f"p = mlkit.data.synthetic({str(shared / 'syn')!r}, rows=3_000, features=2,"
                  " partitions=3, progress=False)", "len(mlkit.data.read(p))")
    assert n == 3_000
    assert len(list((shared / "syn").glob("part.*.parquet"))) == 3
