"""A worker preload that takes a worker process out of the kernel's process group.

JupyterLab's Interrupt is ``os.killpg(kernel_pgid, SIGINT)``. mlkit's own local cluster starts
its processes in a session of their own (:mod:`mlkit.cluster._local`), but a Dask-CUDA cluster
(``dask_cuda.LocalCUDACluster``) is a ``LocalCluster``: its nannies live in the kernel and spawn
the worker processes as the kernel's children, in its process group, so Interrupt killed every
GPU worker. Given as the workers' ``preload``, this module moves each worker process into a
process group of its own as it starts. Nothing else changes: the worker still exits with its
nanny (distributed's ``AsyncProcess`` ends a child whose parent is gone), and the nanny and
``close()`` still stop it.

Examples
--------
>>> from distributed import LocalCluster                     # doctest: +SKIP
>>> LocalCluster(n_workers=2, preload=[PRELOAD])            # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PRELOAD", "dask_setup"]

#: The module name to pass as a worker ``preload``.
PRELOAD = __name__


def dask_setup(worker: Any) -> None:
    """Dask preload hook: runs in the worker process before it joins the scheduler."""
    try:
        if os.getpgrp() != os.getpid():
            os.setpgid(0, 0)
    except OSError:  # not permitted (e.g. a session leader already): keep the worker running
        pass
