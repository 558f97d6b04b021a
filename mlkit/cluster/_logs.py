"""The cluster's logs on demand: what the workers printed, kept out of the notebook.

A local cluster's processes write to ``<mlkit home>/cluster-logs/<cluster id>/`` (xgboost's
collective lines, Dask's INFO logs, a task's ``print``); any other cluster answers through
Dask's own ``Client.get_worker_logs`` / ``get_scheduler_logs``.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from mlkit import _args
from mlkit.exceptions import ConfigArgumentError, ConfigError

__all__ = ["logs"]


def _last_lines(path: Path, n: int) -> list[str]:
    try:
        with open(path, errors="replace") as fh:
            return [line.rstrip("\n") for line in deque(fh, maxlen=n)]
    except OSError:
        return []


def _workers(client: Any) -> dict[str, str]:
    """Worker name -> address, as the scheduler knows them now."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return {str(w.get("name", addr)): addr for addr, w in info.items()}


def _choose(worker: Any, names: dict[str, str], known: list[str]) -> list[str]:
    if worker is None:
        return [k for k in known if k != "scheduler"]
    key = str(worker)
    if key in known:
        return [key]
    by_address = {addr: name for name, addr in names.items()}
    if key in by_address and by_address[key] in known:
        return [by_address[key]]
    raise ConfigError(
        f"worker={worker!r} is not a process of this cluster: use 'scheduler', a worker name "
        f"({', '.join(k for k in known if k != 'scheduler') or 'none'}) or its address "
        f"({', '.join(sorted(by_address)) or 'none'})"
    )


def logs(worker: str | int | None = None, n: int = 50) -> str:
    """The last ``n`` log lines of the active cluster's workers (or of one, or the scheduler).

    Parameters
    ----------
    worker : str or int, optional
        ``"scheduler"``, a worker name (``0``, ``"1"``) or address (``"tcp://127.0.0.1:4321"``).
        Default: every worker.
    n : int
        Lines per process.

    Returns
    -------
    str
        One block per process, headed by its name, address and log file.

    Examples
    --------
    >>> import mlkit
    >>> print(mlkit.cluster.logs(0, n=5))       # doctest: +SKIP
    == worker 0  tcp://127.0.0.1:40123  (.mlkit/cluster-logs/.../worker-0.log)
    2026-12-01 08:32:12,501 - distributed.worker - INFO - ...
    """
    from mlkit.cluster._core import _require_active

    _args.integer("n", n, low=1, rule="a positive number of lines", error=ConfigArgumentError)
    handle = _require_active()
    names = _workers(handle.client)
    files = getattr(handle.deploy, "log_files", None)
    blocks: list[str] = []
    if files is not None:
        found = files()
        for key in _choose(worker, names, list(found)):
            head = "== scheduler" if key == "scheduler" else f"== worker {key}"
            addr = handle.address if key == "scheduler" else names.get(key, "(gone)")
            lines = _last_lines(found[key], n)
            blocks.append("\n".join([f"{head}  {addr}  ({found[key]})", *lines]))
        return "\n\n".join(blocks)
    # Not started by mlkit here: Dask keeps each process's recent log records in memory.
    if str(worker) == "scheduler":
        records = handle.client.get_scheduler_logs(n=n)
        return "\n".join(["== scheduler  " + handle.address, *(m for _, m in reversed(records))])
    chosen = _choose(worker, names, list(names))
    addrs = [names[k] for k in chosen]
    per_worker = handle.client.get_worker_logs(n=n, workers=addrs)
    for key, addr in zip(chosen, addrs, strict=True):
        # Dask returns newest first.
        lines = [m for _, m in reversed(per_worker.get(addr, []))]
        blocks.append("\n".join([f"== worker {key}  {addr}", *lines]))
    return "\n\n".join(blocks)
