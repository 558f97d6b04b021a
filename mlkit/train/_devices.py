"""Which device the ranks train on: CUDA when every training worker sees a GPU, else CPU.

GPU discovery itself lives in :mod:`mlkit.cluster` (NVML); this only asks the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["workers_have_gpus"]


def _gpu_count() -> int:
    """Runs on a worker: how many GPUs NVML shows it (after CUDA_VISIBLE_DEVICES)."""
    from mlkit.cluster import _gpu

    return len(_gpu.probe().gpus)


def workers_have_gpus(client: Any, workers: Sequence[str] | None = None) -> bool:
    """True when the cluster is a Dask-CUDA one, or every one of ``workers`` reports a GPU.

    Examples
    --------
    >>> workers_have_gpus(mlkit.cluster.get_client())     # doctest: +SKIP
    False
    """
    from mlkit.cluster import current

    handle = current()
    if handle is not None and handle.client is client:
        if handle.kind == "cuda":
            return True
        if handle.kind == "local":  # mlkit starts a Dask-CUDA cluster whenever it sees GPUs
            return False
    try:
        counts = client.run(_gpu_count, workers=list(workers) if workers else None)
    except Exception:  # a remote cluster without mlkit on the workers: assume CPU
        return False
    return bool(counts) and all(n > 0 for n in counts.values())
