"""Drift on a served model's prediction log when the workers do not share the client's disk.

The log is written where the server runs (the client host); the workers scan it for drift.
"""

from __future__ import annotations


def test_the_prediction_log_on_the_client_is_scanned_by_the_remote_workers(session, scheduler,
                                                                             net):
    got = session.ok(
        "import time, numpy as np, pandas as pd, mlkit\n"
        "from mlkit.serve._predlog import PredictionLog\n"
        "mlkit.config.set_store(None)\n"
        f"cluster = mlkit.cluster.connect({scheduler!r}, replace=True)\n"
        "log = PredictionLog(mlkit.monitor.prediction_log_dir('scored'), flush_every=50)\n"
        "rng = np.random.default_rng(0)\n"
        "for i in range(4):  # four requests: the second half of the traffic has drifted\n"
        "    X = pd.DataFrame({'a': rng.normal(3.0 if i >= 2 else 0.0, 1.0, 50)})\n"
        "    log.record(X, X['a'].to_numpy() * 2, time.time_ns(), f'r{i}')\n"
        "    log.flush()\n"
        "log.close()\n"
        "live = mlkit.monitor.predictions('scored', since='1h')\n"
        "ref = pd.DataFrame({'a': rng.normal(0.0, 1.0, 400)})\n"
        "report = mlkit.monitor.drift(ref, live, features=['a'], progress=False)\n"
        "hosts = set(live.map_partitions(lambda p: pd.Series([__import__('socket')"
        ".gethostname()] * len(p)), meta=('h', 'str')).compute())",
        "[int(len(live)), sorted(hosts), bool(report.drifted), live.npartitions]", timeout=300)
    rows, hosts, drifted, parts = got
    assert rows == 200 and drifted is True
    assert set(hosts) <= {"worker1", "worker2"} and hosts, hosts  # computed on the workers
    assert 1 <= parts <= 4
    for h in ("worker1", "worker2"):
        assert "predictions" not in net[h].run(["ls", "/tmp/work/.mlkit"]).stdout, h
