"""Histogram overlays for the drift report, drawn with matplotlib when it is installed.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly (never pyplot),
so drawing is thread-safe, never opens a window and leaves the user's pyplot state alone. The
result is an ``<img>`` tag with an embedded base64 PNG: the HTML stays self-contained.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from mlkit._imports import available, require

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")

__all__ = ["have_matplotlib", "feature_img"]

_REF, _CUR = "#8da0cb", "#fc8d62"


def have_matplotlib() -> bool:
    return available("matplotlib")


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6, 1.9), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout(pad=0.4)
    # No "Software" stamp: the same data gives the same bytes (stable notebook outputs).
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _numeric(ax: Any, plot: dict[str, Any]) -> None:
    edges = np.asarray(plot["edges"], dtype=float)
    widths = np.diff(edges)
    ok = widths > 0
    mass = np.asarray(plot["reference"]) + np.asarray(plot["current"])
    if (mass[~ok] > 0).any():  # a point mass on a zero-width bin: draw bars, not a density
        labels = [f"({a:.3g}, {b:.3g}]" if b > a else f"{b:.4g}"
                  for a, b in zip(edges[:-1], edges[1:], strict=True)]
        _categorical(ax, {"labels": labels, "reference": plot["reference"],
                          "current": plot["current"]})
        return
    for key, color, fill in (("reference", _REF, True), ("current", _CUR, False)):
        counts = np.asarray(plot[key], dtype=float)
        total = counts.sum() or 1.0
        # Density over each bin's width; zero-width bins (ties at a quantile) carry no area.
        dens = np.where(ok, counts / total / np.where(ok, widths, 1.0), 0.0)
        ax.stairs(dens, edges, fill=fill, alpha=0.55 if fill else 1.0, color=color,
                  linewidth=1.4, label=key)
    ax.set_yticks([])


def _categorical(ax: Any, plot: dict[str, Any], top: int = 12) -> None:
    labels = list(plot["labels"])
    ref = np.asarray(plot["reference"], dtype=float)
    cur = np.asarray(plot["current"], dtype=float)
    ref, cur = ref / (ref.sum() or 1.0), cur / (cur.sum() or 1.0)
    order = np.argsort(-(ref + cur), kind="stable")[:top]
    x = np.arange(len(order))
    ax.bar(x - 0.2, ref[order], width=0.4, color=_REF, label="reference")
    ax.bar(x + 0.2, cur[order], width=0.4, color=_CUR, label="current")
    ax.set_xticks(x, [str(labels[i])[:10] for i in order], rotation=45, ha="right")


def feature_img(name: str, kind: str, plot: dict[str, Any]) -> str:
    """An ``<img>`` tag with the reference/current overlay of one feature ('' if no plot)."""
    if not plot or not have_matplotlib():
        return ""
    fig, ax = _figure()
    if kind == "numeric":
        _numeric(ax, plot)
    else:
        _categorical(ax, plot)
    ax.set_title(name, fontsize=8)
    ax.legend(fontsize=6, frameon=False)
    data = _png(fig)
    return (
        f'<img alt="{html.escape(name)}: reference vs current" '
        f'src="data:image/png;base64,{data}"/>'
    )
