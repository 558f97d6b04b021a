"""The real Dask-CUDA path. Runs only where NVML sees a GPU (marker `gpu`)."""

from __future__ import annotations

import pytest

import mlkit

pytestmark = pytest.mark.gpu


def test_up_starts_one_cuda_worker_per_gpu():
    found = mlkit.cluster.gpus()
    c = mlkit.cluster.up(gpus="all", replace=True)
    try:
        st = c.status()
        assert c.kind == "cuda" and st.n_workers == len(found.gpus)
        assert sorted(g.uuid for g in st.gpus) == sorted(g.uuid for g in found.gpus)
        devices = c.client.run(lambda: __import__("os").environ["CUDA_VISIBLE_DEVICES"])
        assert len(set(devices.values())) == len(found.gpus)  # each worker sees its GPU first
        # out of the kernel's process group: JupyterLab's Interrupt (killpg) cannot reach them
        groups = c.client.run(lambda: __import__("os").getpgrp() == __import__("os").getpid())
        assert all(groups.values()), groups
    finally:
        mlkit.cluster.down()


def test_widget_lists_every_gpu():
    c = mlkit.cluster.up(gpus=1, replace=True)
    try:
        w = c.widget()
        w.stop()
        assert w.gpu_table.value.count("<tr><td>GPU ") == 1
    finally:
        mlkit.cluster.down()
