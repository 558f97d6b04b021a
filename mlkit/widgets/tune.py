"""The live tuning widget: trials done / total, best value so far, the objective by trial, and
the top trials.

It draws a :class:`mlkit.tune.TuneProgress`, which the study's driver feeds as trials finish and
then calls :meth:`TuneWidget.update`; the widget computes nothing itself. Tests drive it headless:
record rows on a progress object, call ``update()``, read the traits. The plot is a small inline
SVG (a few lines, no plotting library needed in the kernel); :func:`render_html` gives the same
view as static HTML outside a live kernel.
"""

from __future__ import annotations

import html
import math
import threading
from typing import Any

from mlkit._imports import require
from mlkit.tune._progress import TrialRow, TuneProgress, format_value

__all__ = ["TuneWidget", "render_html", "plot_svg", "static_bundle"]

_COLORS = {"COMPLETE": "#1f77b4", "PRUNED": "#aaaaaa", "FAIL": "#d62728"}


def plot_svg(progress: TuneProgress, width: int = 360, height: int = 110) -> str:
    """Objective value by trial number (dots) and the best value so far (step line), as SVG.

    Examples
    --------
    >>> from mlkit.tune._progress import TrialRow, TuneProgress
    >>> p = TuneProgress("s", 2, ["minimize"])
    >>> p.record(TrialRow(0, "COMPLETE", (1.0,), {})); p.record(TrialRow(1, "COMPLETE", (0.5,), {}))
    >>> plot_svg(p).count("<circle")
    2
    """
    pts = [(n, v) for n, v in progress.points() if math.isfinite(v)]
    if not pts:
        return (
            f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<text x="8" y="{height // 2}" font-size="11" fill="#888">'
            "no finished trial yet</text></svg>"
        )
    pad = 8
    xs = [n for n, _ in pts]
    ys = [v for _, v in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def sx(n: float) -> float:
        return pad + (n - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(v: float) -> float:
        return height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad)

    dots = "".join(
        f'<circle cx="{sx(n):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{_COLORS["COMPLETE"]}" '
        f'fill-opacity="0.7"><title>trial {n}: {format_value(v)}</title></circle>'
        for n, v in pts
    )
    curve = (
        [(n, v) for n, v in progress.best_curve() if math.isfinite(v)] if not progress.multi else []
    )
    line = ""
    if curve:
        path = [f"M{sx(curve[0][0]):.1f},{sy(curve[0][1]):.1f}"]
        for n, v in curve[1:]:
            path.append(f"H{sx(n):.1f}V{sy(v):.1f}")
        path.append(f"H{sx(x1 if len(pts) > 1 else curve[-1][0]):.1f}")
        line = f'<path d="{"".join(path)}" fill="none" stroke="#ff7f0e" stroke-width="1.5"/>'
    labels = (
        f'<text x="{width - pad}" y="{pad + 4}" font-size="9" fill="#666" text-anchor="end">'
        f"{html.escape(format_value(y1))}</text>"
        f'<text x="{width - pad}" y="{height - 2}" font-size="9" fill="#666" text-anchor="end">'
        f"{html.escape(format_value(y0))}</text>"
    )
    return (
        f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
        f'style="background:#fafafa;border:1px solid #eee">{line}{dots}{labels}</svg>'
    )


def summary_html(progress: TuneProgress) -> str:
    """The status line: counts by state, running trials, best so far, elapsed time."""
    e = html.escape
    counts = [
        f'<span style="color:{_COLORS[s]}">{progress.count(s)} {s.lower()}</span>'
        for s in ("COMPLETE", "PRUNED", "FAIL")
        if progress.count(s)
    ]
    parts = [", ".join(counts) or "no trial finished yet"]
    if progress.running and not progress.finished:
        parts.append(f"{progress.running} running")
    if progress.retried:
        parts.append(f"{progress.retried} re-run after a lost worker")
    best = progress.best
    if best is not None:
        parts.append(f"best <b>{e(format_value(best.value))}</b> (trial {best.number})")
    elif progress.multi:
        parts.append(f"{len(progress.directions)} objectives")
    parts.append(f"{progress.elapsed:.1f} s")
    if progress.message:
        parts.append(f"<i>{e(progress.message)}</i>")
    return " &middot; ".join(parts)


def top_table_html(progress: TuneProgress, k: int = 5) -> str:
    """The ``k`` best trials with their value, parameters, worker and duration."""
    rows: list[TrialRow] = progress.top(k)
    if not rows:
        return ""
    e = html.escape
    body = "".join(
        f"<tr><td>{r.number}</td><td>{e(format_value(r.value))}</td>"
        f"<td>{e(_params_text(r.params))}</td>"
        f"<td>{e(r.worker)}</td><td>{r.seconds:.2f} s</td></tr>"
        for r in rows
    )
    return (
        '<table style="font-size:12px"><tr><th>trial</th><th>value</th><th>params</th>'
        f"<th>worker</th><th>time</th></tr>{body}</table>"
    )


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={format_value(v) if isinstance(v, float) else v}" for k, v in params.items()
    )


def render_html(progress: TuneProgress) -> str:
    """Static HTML of the whole view (for ``_repr_html_`` and non-live frontends).

    Examples
    --------
    >>> from mlkit.tune._progress import TuneProgress
    >>> "0 / 3 trials" in render_html(TuneProgress("s", 3, ["minimize"]))
    True
    """
    e = html.escape
    return (
        f"<div><b>study {e(progress.study_name)}</b> &mdash; {progress.done} / {progress.total} "
        f"trials<br>{summary_html(progress)}<br>{plot_svg(progress)}<br>{top_table_html(progress)}</div>"
    )


class TuneWidget:
    """Live view of a running study.

    Shown through a display slot whose bundle carries static HTML and text beside the widget;
    a clock thread redraws it every ``tick`` seconds (running trials, elapsed time) until
    :meth:`close`, which replaces the output by the study's final static view (summary, plot,
    top trials) so saved and papermill-written notebooks keep it.

    Parameters
    ----------
    progress : mlkit.tune.TuneProgress
        The state to draw; call :meth:`update` after it changed.
    tick : float or None
        Seconds between clock redraws; None: no clock thread (tests drive ``update()``).

    Examples
    --------
    >>> from mlkit.tune._progress import TrialRow, TuneProgress
    >>> p = TuneProgress("demo", total=4, directions=["maximize"])
    >>> w = TuneWidget(p)                                    # doctest: +SKIP
    >>> p.record(TrialRow(0, "COMPLETE", (0.9,), {"x": 1})); w.update()   # doctest: +SKIP
    >>> w.bar.value                                          # doctest: +SKIP
    1
    """

    def __init__(self, progress: TuneProgress, tick: float | None = None) -> None:
        widgets = require("ipywidgets")
        self.progress = progress
        self.title = widgets.HTML()
        self.bar = widgets.IntProgress(value=0, min=0, max=max(1, progress.total), bar_style="info")
        self.count = widgets.Label()
        self.summary = widgets.HTML()
        self.plot = widgets.HTML()
        self.table = widgets.HTML()
        self.box = widgets.VBox(
            [self.title, widgets.HBox([self.bar, self.count]), self.summary, self.plot, self.table]
        )
        self.slot: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.update()
        if tick is not None and not progress.finished:
            self._thread = threading.Thread(
                target=self._tick, args=(tick,), name="mlkit-tune-clock", daemon=True
            )
            self._thread.start()

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every) and not self.progress.finished:
            try:
                self.update()
            except Exception:  # the kernel's display went away: stop ticking quietly
                return

    def update(self) -> None:
        """Redraw from the progress object."""
        with self._lock:
            p = self.progress
            self.title.value = (
                f"<b>mlkit tune</b> &mdash; study <code>{html.escape(p.study_name)}</code>"
            )
            self.bar.max = max(1, p.total)
            self.bar.value = min(p.done, p.total)
            if p.finished:
                self.bar.bar_style = "success" if p.done >= p.total else "warning"
            self.count.value = f"{p.done} / {p.total} trials"
            self.summary.value = summary_html(p)
            plot = plot_svg(p)
            if plot != self.plot.value:
                self.plot.value = plot
            self.table.value = top_table_html(p)

    # -- display -------------------------------------------------------------------------------
    def show(self) -> None:
        """Display the widget (with its static fallback) in a slot :meth:`close` can replace."""
        from mlkit._display import Slot

        self.slot = Slot()
        self.slot.show(self._repr_mimebundle_())

    def close(self) -> None:
        """Final redraw; a shown widget's output becomes the study's static final view."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.update()
        if self.slot is not None:
            self.slot.update(static_bundle(self.progress))
            self.box.close()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    @staticmethod
    def static_bundle(progress: TuneProgress) -> dict[str, Any]:
        """The view's static form (what :func:`mlkit._display.static_bundle` shows)."""
        return static_bundle(progress)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        from mlkit._display import mimebundle

        return mimebundle(render_html(self.progress), str(self.progress), self.box)


def static_bundle(progress: TuneProgress) -> dict[str, Any]:
    """The study's final view without a widget: HTML (summary, SVG plot, top trials) + text."""
    from mlkit._display import mimebundle

    return mimebundle(render_html(progress), str(progress))
