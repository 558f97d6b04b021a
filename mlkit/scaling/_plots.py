"""The scaling report's figures (matplotlib), drawn from the tidy table alone.

Figures are built with :class:`matplotlib.figure.Figure`, never through ``pyplot``: nothing is
shown or kept open as a side effect, any backend works (a notebook displays a returned figure
inline; a script or the CLI only writes PNGs).

Examples
--------
>>> figs = figures(report.table)                    # doctest: +SKIP
>>> sorted(figs)                                    # doctest: +SKIP
['accuracy', 'efficiency', 'latency', 'throughput']
>>> png = to_png(figs["throughput"])                # doctest: +SKIP
"""

from __future__ import annotations

import io
from typing import Any

from mlkit.scaling._table import LABELS, THROUGHPUT

__all__ = ["figures", "to_png"]


def _throughput_rows(table: Any, measure: str) -> Any:
    return table[table["measure"] == measure].sort_values("workers")


def _throughput(table: Any) -> Any:
    from matplotlib.figure import Figure

    measures = [m for m in THROUGHPUT if (table["measure"] == m).any()]
    fig = Figure(figsize=(3.2 * max(1, len(measures)), 3.2), layout="constrained")
    axes = fig.subplots(1, max(1, len(measures)), squeeze=False)[0]
    for ax, measure in zip(axes, measures, strict=False):
        rows = _throughput_rows(table, measure)
        ax.plot(rows["workers"], rows["value"], "o-", label="measured")
        ax.plot(rows["workers"], rows["ideal"], "--", color="grey", label="ideal (linear)")
        for _, r in rows.iterrows():
            ax.annotate(f"{r['efficiency']:.0%}", (r["workers"], r["value"]),
                        textcoords="offset points", xytext=(4, -12), fontsize=8)
        ax.set_title(LABELS[measure].replace(" (", "\n("), fontsize=9)
        ax.set_xlabel("workers")
        ax.set_ylabel(str(rows["unit"].iloc[0]))
        ax.set_xticks(sorted(rows["workers"].unique()))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Throughput against workers (labels: efficiency = measured / ideal)",
                 fontsize=10)
    return fig


def _efficiency(table: Any) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for measure in THROUGHPUT:
        rows = _throughput_rows(table, measure)
        if len(rows):
            ax.plot(rows["workers"], rows["efficiency"], "o-", label=measure)
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.set_xlabel("workers")
    ax.set_ylabel("efficiency (measured / ideal)")
    ax.set_xticks(sorted(table["workers"].unique()))
    ax.set_ylim(0, max(1.2, float(table["efficiency"].max(skipna=True) or 0) * 1.1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Efficiency: 1.0 is linear scaling", fontsize=10)
    return fig


def _latency(table: Any) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for measure, style in (("latency_p50", "o-"), ("latency_p99", "s--")):
        rows = table[table["measure"] == measure].sort_values("clients")
        if len(rows):
            ax.plot(rows["clients"].astype(int), rows["value"], style, label=measure[-3:])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Served model: latency per one-row request", fontsize=10)
    return fig


def _accuracy(table: Any) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    rows = table[table["measure"] == "accuracy"].sort_values("train_rows")
    ax.plot(rows["train_rows"].astype(int), rows["value"], "o-")
    ax.set_xscale("log")
    ax.set_xlabel("training rows")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    if len(rows):
        ax.set_title(f"Accuracy against training-set size ({int(rows['workers'].iloc[0])} "
                     "workers)", fontsize=10)
    return fig


def figures(table: Any) -> dict[str, Any]:
    """The report's figures from its table: throughput, efficiency, latency, accuracy."""
    out = {"throughput": _throughput(table), "efficiency": _efficiency(table)}
    if table["measure"].str.startswith("latency").any():
        out["latency"] = _latency(table)
    if (table["measure"] == "accuracy").any():
        out["accuracy"] = _accuracy(table)
    return out


def to_png(fig: Any, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
