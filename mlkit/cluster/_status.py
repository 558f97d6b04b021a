"""A plain snapshot of a cluster's state, computed by the API and drawn by widgets."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from mlkit.cluster._gpu import GPUInfo

__all__ = ["WorkerStatus", "ClusterStatus", "format_bytes"]


def format_bytes(n: float) -> str:
    """Human-readable bytes.

    Examples
    --------
    >>> format_bytes(1536), format_bytes(3 * 2**30)
    ('1.50 KiB', '3.00 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"  # pragma: no cover - loop always returns


@dataclass(frozen=True)
class WorkerStatus:
    """One worker: its name, address, threads, memory (bytes) and GPUs."""

    name: str
    address: str
    threads: int
    memory_used: int
    memory_limit: int
    pid: int | None = None
    gpus: list[GPUInfo] = field(default_factory=list)


@dataclass(frozen=True)
class ClusterStatus:
    """A snapshot of the whole cluster, as :func:`mlkit.cluster.status` returns it.

    Examples
    --------
    >>> s = ClusterStatus(kind="local", address="tcp://127.0.0.1:1", dashboard_link=None,
    ...                   workers=[WorkerStatus("0", "tcp://127.0.0.1:2", 2, 10, 100)])
    >>> s.n_workers, s.threads, s.memory_limit
    (1, 2, 100)
    """

    kind: str
    address: str
    dashboard_link: str | None
    workers: list[WorkerStatus]
    running: bool = True
    # What the workers reach (a cluster on other hosts): mlkit.cluster._preflight.Preflight
    preflight: Any = None

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def threads(self) -> int:
        return sum(w.threads for w in self.workers)

    @property
    def memory_used(self) -> int:
        return sum(w.memory_used for w in self.workers)

    @property
    def memory_limit(self) -> int:
        return sum(w.memory_limit for w in self.workers)

    @property
    def gpus(self) -> list[GPUInfo]:
        return [g for w in self.workers for g in w.gpus]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "address": self.address,
            "dashboard_link": self.dashboard_link,
            "running": self.running,
            "workers": self.n_workers,
            "threads": self.threads,
            "memory_used": self.memory_used,
            "memory_limit": self.memory_limit,
            "gpus": [g.to_dict() for g in self.gpus],
            "preflight": self.preflight.to_dict() if self.preflight is not None else None,
        }

    def __str__(self) -> str:
        if not self.running:
            where = f" at {self.address}" if self.address else ""
            return f"mlkit cluster ({self.kind}){where}: stopped"
        lines = [
            f"mlkit cluster ({self.kind}) at {self.address}",
            f"  workers: {self.n_workers}   threads: {self.threads}   memory: "
            f"{format_bytes(self.memory_used)} / {format_bytes(self.memory_limit)}",
        ]
        if self.dashboard_link:
            lines.append(f"  dashboard: {self.dashboard_link}")
        for g in self.gpus:
            lines.append(
                f"  GPU {g.index} {g.name}: {format_bytes(g.memory_used)} / "
                f"{format_bytes(g.memory_total)}, {g.utilization}% busy"
            )
        if self.preflight is not None:
            lines += self.preflight.lines()
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        where = f" at <code>{e(self.address)}</code>" if self.address else ""
        if not self.running:
            return f"<div><b>mlkit cluster</b> ({e(self.kind)}){where}: <b>stopped</b></div>"
        from mlkit._display import link_html

        pct = 100.0 * self.memory_used / self.memory_limit if self.memory_limit else 0.0
        dash = link_html(self.dashboard_link) if self.dashboard_link else "disabled"
        rows = "".join(
            f"<tr><td>{e(str(w.name))}</td><td><code>{e(w.address)}</code></td><td>{w.threads}</td>"
            f"<td>{format_bytes(w.memory_used)} / {format_bytes(w.memory_limit)}</td>"
            f"<td>{e(', '.join(g.name for g in w.gpus)) or '-'}</td></tr>"
            for w in self.workers
        )
        gpu_rows = "".join(
            f"<tr><td>GPU {g.index}</td><td>{e(g.name)}</td>"
            f"<td>{format_bytes(g.memory_used)} / {format_bytes(g.memory_total)}</td>"
            f"<td>{g.utilization}%</td></tr>"
            for g in self.gpus
        )
        gpu_table = (
            f"<table><tr><th>GPU</th><th>name</th><th>memory</th><th>util</th></tr>{gpu_rows}</table>"
            if gpu_rows
            else ""
        )
        return (
            f"<div><b>mlkit cluster</b> ({e(self.kind)}) at <code>{e(self.address)}</code><br>"
            f"workers: {self.n_workers} &nbsp; threads: {self.threads} &nbsp; memory: "
            f"{format_bytes(self.memory_used)} / {format_bytes(self.memory_limit)} ({pct:.0f}%)<br>"
            f"dashboard: {dash}"
            f"<table><tr><th>worker</th><th>address</th><th>threads</th><th>memory</th><th>GPUs</th></tr>"
            f"{rows}</table>{gpu_table}"
            f"{self.preflight._repr_html_() if self.preflight is not None else ''}</div>"
        )
