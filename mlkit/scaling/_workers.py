"""The worker counts a scaling report measures: parsed, checked and bounded before anything runs.

Examples
--------
>>> parse_workers("1,2")
(1, 2)
>>> parse_workers([2, 1, 2])
(1, 2)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from mlkit.exceptions import ConfigError

__all__ = ["parse_workers", "worker_limit", "check_limit"]


def _bad(value: Any, why: str) -> ConfigError:
    return ConfigError(
        f"workers={value!r} {why}: give positive whole numbers of workers, "
        "e.g. workers=(1, 2) or --workers 1,2"
    )


def parse_workers(value: Any) -> tuple[int, ...]:
    """The worker counts in ``value`` (``2``, ``"1,2,4"``, ``(1, 2)``), sorted, without repeats.

    Raises :class:`~mlkit.exceptions.ConfigError` naming the value for anything else.

    Examples
    --------
    >>> parse_workers(2), parse_workers(" 4, 1 ,2 ")
    ((2,), (1, 2, 4))
    >>> parse_workers("1,x")
    Traceback (most recent call last):
    ...
    mlkit.exceptions.ConfigError: workers='1,x' has 'x', which is not a whole number: ...
    """
    if isinstance(value, bool):
        raise _bad(value, "is a bool")
    items: Iterable[Any]
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, str):
        items = [p.strip() for p in value.split(",")]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise _bad(value, f"is a {type(value).__name__}")
    counts = []
    for item in items:
        if isinstance(item, str):
            if not item.strip().isdigit():
                what = "an empty entry" if not item.strip() else f"{item!r}"
                raise _bad(value, f"has {what}, which is not a whole number")
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int):
            # numpy integers are fine; floats, None and the like are not
            if type(item).__name__.startswith(("int", "uint")) and hasattr(item, "item"):
                item = int(item)
            else:
                raise _bad(value, f"has {item!r}, which is not a whole number")
        if item < 1:
            raise _bad(value, f"has {item}, but a cluster needs at least 1 worker")
        counts.append(int(item))
    if not counts:
        raise _bad(value, "is empty")
    return tuple(sorted(set(counts)))


def worker_limit(cluster: Any) -> tuple[int | None, str]:
    """The most workers a report may ask of ``cluster`` (None: no known bound) and why.

    ``cluster`` is the active :class:`mlkit.cluster.Cluster` or None (the report then starts a
    local one). A cluster on this machine gets one worker per core (more would only measure the
    cores being shared); a joined cluster cannot be scaled by mlkit, so its present workers are
    the bound; a cluster manager (SLURM, Kubernetes...) has no bound mlkit can know.
    """
    cores = os.cpu_count() or 1
    if cluster is None:
        return cores, f"this machine has {cores} core(s), one worker each"
    if cluster.kind == "local":
        # a local cluster already started bigger than the cores is the user's choice to measure
        n = len(cluster.client.scheduler_info(n_workers=-1).get("workers", {}))
        if n > cores:
            return n, f"this local cluster has {n} workers on {cores} core(s)"
        return cores, f"this machine has {cores} core(s), one worker each"
    if cluster.kind == "cuda":
        return len(cluster.gpus), f"this Dask-CUDA cluster has {len(cluster.gpus)} GPU(s)"
    if cluster.deploy is None:
        n = len(cluster.client.scheduler_info(n_workers=-1).get("workers", {}))
        return n, (
            f"this cluster was joined by address and has {n} worker(s); mlkit cannot add "
            "workers to it (scale it where it was started)"
        )
    return None, ""


def check_limit(workers: tuple[int, ...], value: Any, cluster: Any) -> None:
    """Raise ConfigError naming ``value`` when its largest count is over the cluster's bound."""
    limit, why = worker_limit(cluster)
    if cluster is not None and cluster.deploy is None and workers != (limit,):
        raise ConfigError(
            f"workers={value!r} needs scaling, but {why}: pass workers={limit}, or start a "
            "cluster mlkit can scale (mlkit.cluster.up)"
        )
    if limit is not None and workers[-1] > limit:
        raise ConfigError(
            f"workers={value!r} asks for {workers[-1]} workers, more than this cluster allows "
            f"({why}): use counts up to {limit}"
        )
