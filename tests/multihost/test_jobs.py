"""A sweep on workers that do not share the client's disk: the notebook travels, so do results."""

from __future__ import annotations

import pytest

NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": None,
         "outputs": [], "source": "x = 1"},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "import socket, mlkit\nprint('x is', x)\n"
                   "mlkit.jobs.record(square=x * x, host=socket.gethostname())"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.mark.timeout(600)
def test_sweep_ships_the_notebook_and_brings_every_output_back(session, scheduler, net):
    got = session.ok(
        "import json, os, mlkit\n"
        f"cluster = mlkit.cluster.connect({scheduler!r})\n"
        "os.makedirs('/tmp/work/nb', exist_ok=True)\n"
        f"json.dump({NOTEBOOK!r}, open('/tmp/work/nb/square.ipynb', 'w'))\n"
        "df = mlkit.jobs.sweep('/tmp/work/nb/square.ipynb', {'x': [1, 2, 3]}, progress=False,"
        " verbose=False)\n"
        "outs = [open(p).read() for p in df['output']]",
        "[df['status'].tolist(), df['square'].tolist(), sorted(set(df['host'])),"
        " df.attrs['status'], [('x is %d' % x) in o for x, o in zip([1, 2, 3], outs)],"
        " list(df['output'])]", timeout=540)
    statuses, squares, hosts, parent, printed, outputs = got
    assert statuses == ["ok"] * 3 and squares == [1, 4, 9]
    assert set(hosts) <= {"worker1", "worker2"} and hosts  # ran on the workers
    assert parent == "FINISHED" and all(printed)
    assert all(p.startswith("/tmp/work/") for p in outputs), outputs  # on the client's disk
    # The notebook exists only on the client; nothing is left on the workers.
    for h in ("worker1", "worker2"):
        assert net[h].run(["sh", "-c", "ls -d /tmp/mlkit-shipped-* 2>/dev/null"],
                          check=False).stdout.strip() == "", h
