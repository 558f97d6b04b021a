"""A training history as static inline SVG: one small chart per metric, the kept round marked.

Hand-made SVG (no plotting library needed in the kernel); it is part of the final static
snapshot a training leaves in the notebook, so nbconvert, GitHub and a kernel-less reopen show it.
"""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["history_svg"]

_MAX_POINTS = 400  # longer histories are thinned (evenly, keeping the last step)
_MAX_CHARTS = 4


def _series(history: list[tuple[int, dict[str, Any]]]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for step, metrics in history:
        for key, value in metrics.items():
            if isinstance(value, int | float) and math.isfinite(value):
                out.setdefault(key, []).append((step, float(value)))
    return out


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= _MAX_POINTS:
        return points
    stride = len(points) / (_MAX_POINTS - 1)
    picked = [points[int(i * stride)] for i in range(_MAX_POINTS - 1)]
    return [*picked, points[-1]]


def history_svg(
    history: list[tuple[int, dict[str, Any]]],
    best: int | None = None,
    width: int = 320,
    height: int = 70,
) -> str:
    """Line charts of each metric by step; a dashed line at ``best`` (the kept step).

    Examples
    --------
    >>> h = [(1, {"valid-logloss": 0.6}), (2, {"valid-logloss": 0.4}), (3, {"valid-logloss": 0.5})]
    >>> svg = history_svg(h, best=2)
    >>> svg.count("<svg"), "best round 2" in svg
    (1, True)
    """
    series = _series(history)
    if not series:
        return ""
    e = html.escape
    charts = []
    pad = 6
    for key, points in list(series.items())[:_MAX_CHARTS]:
        points = _thin(points)
        xs = [s for s, _ in points]
        ys = [v for _, v in points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if best is not None:
            x0, x1 = min(x0, best), max(x1, best)
        if x1 == x0:
            x1 = x0 + 1
        if y1 == y0:
            y0, y1 = y0 - 0.5, y1 + 0.5

        def sx(s: float, x0: float = x0, x1: float = x1) -> float:
            return pad + (s - x0) / (x1 - x0) * (width - 2 * pad)

        def sy(v: float, y0: float = y0, y1: float = y1) -> float:
            return height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad - 10)

        path = "M" + " L".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in points)
        marker = ""
        if best is not None:
            at = next((v for s, v in reversed(points) if s == best), None)
            value = f": {at:.4g}" if at is not None else ""
            marker = (
                f'<line x1="{sx(best):.1f}" y1="{pad + 10}" x2="{sx(best):.1f}" '
                f'y2="{height - pad}" stroke="#4caf50" stroke-dasharray="3,2"/>'
                f'<text x="{width - pad}" y="{pad + 6}" font-size="9" fill="#4caf50" '
                f'text-anchor="end">best round {best}{e(value)}</text>'
            )
        charts.append(
            f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
            f'style="background:#fafafa;border:1px solid #eee;margin:2px 0">'
            f'<text x="{pad}" y="{pad + 6}" font-size="9" fill="#444">{e(key)} '
            f"({ys[-1]:.4g} at {xs[-1]})</text>"
            f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>{marker}</svg>'
        )
    return "<div>" + "<br>".join(charts) + "</div>"
