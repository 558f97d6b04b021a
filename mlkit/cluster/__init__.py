"""Start, join, scale and stop the Dask cluster that every mlkit API runs on.

Importing this package is cheap: Dask and distributed load when a cluster is first started.

Examples
--------
>>> import mlkit
>>> c = mlkit.cluster.up(workers=2)     # doctest: +SKIP
>>> mlkit.cluster.status()              # doctest: +SKIP
>>> mlkit.cluster.down()                # doctest: +SKIP
"""

from mlkit.cluster._core import (
    Cluster,
    ClusterPlan,
    connect,
    current,
    down,
    get_client,
    plan,
    scale,
    status,
    up,
)
from mlkit.cluster._gpu import GPUInfo, GPUProbe
from mlkit.cluster._gpu import probe as gpus
from mlkit.cluster._logs import logs
from mlkit.cluster._status import ClusterStatus, WorkerStatus

__all__ = [
    "Cluster",
    "ClusterPlan",
    "ClusterStatus",
    "GPUInfo",
    "GPUProbe",
    "WorkerStatus",
    "connect",
    "current",
    "down",
    "get_client",
    "gpus",
    "logs",
    "plan",
    "scale",
    "status",
    "up",
]
