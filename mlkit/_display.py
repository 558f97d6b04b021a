"""The bottom display layer: where output goes, one progress abstraction, and final static states.

Every view mlkit shows in a notebook follows two conventions:

- its display bundle carries ``text/plain`` and ``text/html`` beside the ipywidgets view
  (``application/vnd.jupyter.widget-view+json``), as ipywidgets' and dask's ``_repr_mimebundle_``
  do, so frontends without the live widget (nbconvert, GitHub, a notebook reopened without its
  kernel) fall back to the static HTML;
- when its work ends, its output is replaced in place (``update_display`` on the display id it
  was shown with) by a static bundle of the final state, so saved and papermill-written
  notebooks keep the result instead of a widget whose model died with the kernel.

State and drawing are separate: compute code feeds a :class:`ProgressState`; a
:class:`ProgressBar` draws it with tqdm (``tqdm.notebook``, an ipywidgets bar, in a kernel;
``tqdm.std`` on stderr elsewhere). Richer state objects (a study's ``TuneProgress``, a
``Cluster``) are drawn by the widget :data:`WIDGETS` names for their class: compute packages hand
their state to :func:`open_view`, :func:`widget`, :func:`static_bundle` or :func:`display_live`
and never import :mod:`mlkit.widgets` (``tests/test_layering.py`` checks it). Whether a call shows
progress at all follows one rule, :func:`wants_progress`. Importing this module is cheap:
IPython, tqdm, ipywidgets and the widget modules load only when something is drawn.
"""

from __future__ import annotations

import html
import importlib
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from mlkit._imports import require

__all__ = [
    "WIDGET_VIEW_MIME",
    "end_view",
    "done_quietly",
    "in_kernel",
    "can_draw_widgets",
    "mimebundle",
    "Slot",
    "ProgressState",
    "ProgressBar",
    "bar_style",
    "link_html",
    "DaskProgress",
    "wants_progress",
    "WIDGETS",
    "widget_class",
    "widget",
    "static_bundle",
    "open_view",
    "display_live",
    "history_chart",
]

WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where widgets can render), False in a terminal or script.

    Examples
    --------
    >>> in_kernel()
    False
    """
    ip = _ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _ipython() -> Any:
    if "IPython" not in sys.modules:  # nothing can be displaying if IPython was never imported
        return None
    from IPython import get_ipython

    return get_ipython()


def can_draw_widgets() -> bool:
    """In a kernel and ipywidgets importable."""
    if not in_kernel():
        return False
    from mlkit._imports import available

    return available("ipywidgets")


def wants_progress(progress: bool | None) -> bool:
    """The one default rule for showing progress: ``progress`` if given, else show it where
    someone watches (a kernel, or stderr on a terminal).

    Cluster work also stays quiet when it ends within :data:`QUIET_SECONDS`
    (:func:`done_quietly`).

    Examples
    --------
    >>> wants_progress(True), wants_progress(False)
    (True, False)
    """
    if progress is not None:
        return progress
    return in_kernel() or sys.stderr.isatty()


def mimebundle(html_text: str, plain: str, widget: Any = None) -> dict[str, Any]:
    """A display bundle: the widget's view (if any) plus static HTML and plain text.

    The widget entry is ipywidgets' own (``widget._repr_mimebundle_()``), so its model id and
    version fields are exactly what the widget manager expects.

    Examples
    --------
    >>> sorted(mimebundle("<b>2</b>", "2"))
    ['text/html', 'text/plain']
    """
    data: dict[str, Any] = {"text/plain": plain, "text/html": html_text}
    if widget is not None:
        view = (widget._repr_mimebundle_() or {}).get(WIDGET_VIEW_MIME)
        if view is not None:
            data[WIDGET_VIEW_MIME] = view
    return data


class Slot:
    """One output area, addressed by a display id: shown once, then updated in place.

    Outside IPython nothing is displayed (the view prints or writes text itself).

    Examples
    --------
    >>> s = Slot()
    >>> s.show({"text/plain": "x"}); s.shown      # no IPython here: nothing shown
    False
    """

    def __init__(self) -> None:
        self.display_id = f"mlkit-{uuid.uuid4().hex}"
        self.shown = False
        self.last: dict[str, Any] | None = None

    def show(self, data: dict[str, Any]) -> None:
        if _ipython() is None:
            return
        from IPython.display import display

        display(data, raw=True, display_id=self.display_id)
        self.shown, self.last = True, data

    def update(self, data: dict[str, Any]) -> None:
        """Replace what the slot shows (no-op before :meth:`show` or if unchanged)."""
        if not self.shown or data == self.last:
            return
        from IPython.display import update_display

        update_display(data, raw=True, display_id=self.display_id)
        self.last = data


def link_html(url: str, text: str | None = None) -> str:
    """An ``<a>`` that looks like a link also inside a widget (JupyterLab's widget CSS unstyles
    plain anchors).

    Examples
    --------
    >>> link_html("http://127.0.0.1:8787/status").startswith('<a href="http://127.0.0.1:8787')
    True
    """
    e = html.escape
    return (
        f'<a href="{e(url)}" target="_blank" rel="noopener" '
        'style="color:var(--jp-content-link-color,#1976d2);text-decoration:underline">'
        f"{e(text if text is not None else url)}</a>"
    )


# -- progress --------------------------------------------------------------------------------
# status -> (bootstrap bar style, word shown in text). "early" is a success: the run ended
# because it stopped improving, which is what early stopping asks for.
_STYLES = {
    "running": ("info", "running"),
    "finished": ("success", "finished"),
    "early": ("success", "stopped early"),
    "stopped": ("warning", "interrupted"),
    "failed": ("danger", "failed"),
}
_COLORS = {"info": "#2196f3", "success": "#4caf50", "warning": "#ff9800", "danger": "#f44336"}


def bar_style(status: str) -> str:
    """The ipywidgets ``bar_style`` for a progress status.

    Examples
    --------
    >>> bar_style("early"), bar_style("failed")
    ('success', 'danger')
    """
    return _STYLES.get(status, ("info", status))[0]


@dataclass
class ProgressState:
    """What a long call has done so far: the one progress state every view draws.

    Parameters
    ----------
    desc : str
        Label, e.g. ``"xgboost"``.
    total : int or None
        Steps expected, if known.
    unit : str
        What a step is ("round", "epoch", "job", "task").

    Examples
    --------
    >>> s = ProgressState("xgboost", total=150, unit="round")
    >>> s.update(72, {"valid-logloss": 0.21})
    >>> s.finish("early", note="stopped early at round 72, best 62")
    >>> s.summary()
    'xgboost: stopped early at round 72, best 62 (72/150 rounds) | valid-logloss=0.21'
    """

    desc: str
    total: int | None = None
    unit: str = "step"
    position: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    status: str = "running"
    note: str = ""
    best: int | None = None  # the step the result keeps (early stopping's best round)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    def update(self, position: int | None, metrics: dict[str, Any] | None = None) -> None:
        """Move to ``position`` (None: stay) and record ``metrics`` for it."""
        if position is not None:
            self.position = max(self.position, int(position))
        if metrics:
            self.metrics = dict(metrics)
            self.history.append((self.position, dict(metrics)))

    def finish(self, status: str = "finished", *, note: str = "", best: int | None = None) -> None:
        """End the work: ``status`` is finished, early, stopped (interrupted) or failed."""
        self.status, self.note, self.ended = status, note, time.monotonic()
        if best is not None:
            self.best = best

    @property
    def done(self) -> bool:
        return self.status != "running"

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def fraction(self) -> float:
        """Share of the bar to fill: a successful end fills it (early stopping included)."""
        if self.status in ("finished", "early"):
            return 1.0
        if not self.total:
            return 0.0
        return min(1.0, self.position / self.total)

    def best_metrics(self) -> dict[str, Any]:
        """Metrics recorded at the kept step (the last ones if no best step is known)."""
        if self.best is not None:
            for step, metrics in reversed(self.history):
                if step == self.best:
                    return metrics
        return self.metrics

    def headline(self) -> str:
        word = self.note or _STYLES.get(self.status, ("", self.status))[1]
        count = f"{self.position}/{self.total}" if self.total else f"{self.position}"
        return f"{self.desc}: {word} ({count} {self.unit}s)"

    def summary(self) -> str:
        """One line of plain text: what happened, how far, the kept metrics."""
        metrics = self.best_metrics()
        if not metrics:
            return self.headline()
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items())
        return f"{self.headline()} | {shown}"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def progress_html(state: ProgressState, extra: str = "") -> str:
    """Static HTML of a progress state: a coloured bar, the headline, metrics, then ``extra``."""
    e = html.escape
    color = _COLORS[bar_style(state.status)]
    pct = 100.0 * state.fraction
    metrics = state.best_metrics()
    label = "best" if state.best is not None else "last"
    shown = (
        f"<br><small>{label}: "
        + ", ".join(f"{e(k)} <b>{e(_fmt(v))}</b>" for k, v in metrics.items())
        + "</small>"
        if metrics
        else ""
    )
    return (
        f'<div class="mlkit-progress" data-status="{e(state.status)}">'
        f"<b>{e(state.headline())}</b> &middot; {state.elapsed:.1f} s"
        f'<div style="width:320px;height:10px;background:#eee;border-radius:3px;margin:3px 0">'
        f'<div style="width:{pct:.0f}%;height:10px;background:{color};border-radius:3px"></div>'
        f"</div>{shown}{extra}</div>"
    )


class ProgressBar:
    """Draws a :class:`ProgressState`: a tqdm widget in a kernel, a tqdm text bar elsewhere.

    In a kernel the bar is shown in a :class:`Slot` whose bundle also carries static HTML and
    plain text; :meth:`close` replaces it with the final static state (``final_html`` lets the
    caller add e.g. a history chart).

    Parameters
    ----------
    state : ProgressState
    enabled : bool
        False draws nothing (the state is still kept).
    history : bool
        The final snapshot also charts the metric history (:func:`history_chart`).

    Examples
    --------
    >>> s = ProgressState("sweep", total=3, unit="job")
    >>> bar = ProgressBar(s, enabled=False)
    >>> s.update(3); bar.refresh(); bar.close()
    >>> s.status
    'finished'
    """

    def __init__(
        self, state: ProgressState, *, enabled: bool = True, history: bool = False
    ) -> None:
        self.state = state
        self.bar: Any = None
        self.slot: Slot | None = None
        # callable(state) -> extra HTML for the final snapshot; ``history``: the metric charts
        self.final_html: Any = history_chart if history else None
        self._drawn = state.position
        if not enabled:
            return
        widgets = can_draw_widgets()
        tqdm = require("tqdm.notebook" if widgets else "tqdm.std").tqdm
        kwargs: dict[str, Any] = {
            "total": state.total,
            "initial": state.position,
            "desc": state.desc,
            "unit": state.unit,
            "dynamic_ncols": True,
            "leave": True,
        }
        if widgets:
            self.bar = tqdm(display=False, **kwargs)
            self.slot = Slot()
            self.slot.show(self._bundle(live=True))
        else:
            self.bar = tqdm(file=sys.stderr, **kwargs)

    def _bundle(self, live: bool) -> dict[str, Any]:
        extra = ""
        if not live and self.final_html is not None:
            try:
                extra = self.final_html(self.state)
            except Exception:  # a chart problem must not hide the result line
                extra = ""
        return mimebundle(
            progress_html(self.state, extra),
            self.state.summary(),
            self.bar.container if live and self.bar is not None else None,
        )

    def refresh(self) -> None:
        """Push the state's position and metrics to the bar."""
        if self.bar is None:
            return
        st = self.state
        if st.position > self._drawn:
            self.bar.update(st.position - self._drawn)
            self._drawn = st.position
        if st.metrics:
            self.bar.set_postfix({k: _fmt(v) for k, v in st.metrics.items()}, refresh=True)

    def close(self, status: str | None = None, *, note: str = "", best: int | None = None) -> None:
        """Finish the state (if ``status`` is given) and draw its final, static form."""
        st = self.state
        if status is not None:
            st.finish(status, note=note, best=best)
        elif not st.done:
            st.finish("finished")
        if self.bar is None:
            return
        self.refresh()
        style = bar_style(st.status)
        if st.note or st.status != "finished":
            self.bar.set_description_str(f"{st.desc} ({st.note or _STYLES[st.status][1]})")
        if self.slot is not None:
            if st.status in ("finished", "early") and st.total:
                # tqdm paints a bar short of its total red; a successful early end is not red
                self.bar.total = max(self.bar.n, 1)
            self.bar.close()
            self.bar.container.children[1].bar_style = style
            self.slot.update(self._bundle(live=False))
            self.bar.container.close()  # its output now shows the static state
        else:
            self.bar.close()


class DaskProgress:
    """distributed's own progress widget for some futures, in a slot that ends static.

    Only for a kernel with ipywidgets (text elsewhere stays distributed's ``TextProgressBar``).
    The widget follows every task on the scheduler; :meth:`close` replaces it with one static
    line (what finished, how long it took) so a saved notebook shows the outcome.

    Examples
    --------
    >>> bar = DaskProgress(client.compute(objs), "profile")   # doctest: +SKIP
    >>> bar.close("finished")                                  # doctest: +SKIP
    """

    def __init__(self, futures: list[Any], desc: str = "cluster work") -> None:
        from distributed.diagnostics.progressbar import ProgressWidget

        self.state = ProgressState(desc, total=len(futures), unit="result")
        self.widget = ProgressWidget(futures, complete=True)  # updates itself on the IOLoop
        self.slot = Slot()
        self.slot.show(
            mimebundle(progress_html(self.state), self.state.summary(), self.widget.widget)
        )

    def close(self, status: str = "finished") -> None:
        st = self.state
        if status in ("finished", "early"):
            st.update(st.total)
        st.finish(status)
        self.slot.update(mimebundle(progress_html(st), st.summary()))
        self.widget.widget.close()


def end_view(view: DaskProgress | None, exc: BaseException | None = None) -> None:
    """End a live cluster-progress view with its outcome: ``finished`` when ``exc`` is None,
    ``stopped`` for the stop button (KeyboardInterrupt), ``failed`` otherwise; None is a no-op.

    Examples
    --------
    >>> end_view(None)
    """
    if view is None:
        return
    if exc is None:
        view.close("finished")
    else:
        view.close("stopped" if isinstance(exc, KeyboardInterrupt) else "failed")


# Cluster work that finishes within this many seconds shows no bar: quick cells stay quiet, and
# a saved notebook shows the same outputs however busy the machine that ran it was.
QUIET_SECONDS = 2.0


def done_quietly(futures: list[Any], progress: bool | None) -> bool:
    """The one rule for when cluster work gets no progress bar: ``progress=False``, or the
    default (None) and the work finished within :data:`QUIET_SECONDS`.

    Polled rather than ``distributed.wait(timeout=)``: its TimeoutError leaves a reference
    cycle (traceback -> frames -> the futures) that kept each computed graph's results alive
    on the workers until the client's garbage collector ran; at a tight memory_limit that
    alone restarted workers.

    Examples
    --------
    >>> done_quietly([], progress=False)
    True
    >>> done_quietly([], progress=None)
    True
    """
    if progress is not None:
        return not progress
    import time

    deadline = time.monotonic() + QUIET_SECONDS
    while not all(f.done() for f in futures):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# -- views of state objects --------------------------------------------------------------------
# The widget that draws each state class, as "module:class" (matched along the state's MRO).
# Compute packages hand their state to the functions below and never import mlkit.widgets; the
# widget module loads only when something is drawn. A new view: its widget class in
# mlkit/widgets/ (taking the state as first argument, with show(); static_bundle(state) for the
# static form) and one line here.
WIDGETS: dict[str, str] = {
    "mlkit.tune._progress.TuneProgress": "mlkit.widgets.tune:TuneWidget",
    "mlkit.cluster._core.Cluster": "mlkit.widgets.cluster:ClusterWidget",
    "mlkit.serve._deploy.GatewayServer": "mlkit.widgets.serve:ServeWidget",
}


def _lookup(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def widget_class(state: object) -> Any:
    """The widget class that draws ``state`` (see :data:`WIDGETS`).

    Examples
    --------
    >>> widget_class(ProgressState("x"))
    Traceback (most recent call last):
    ...
    TypeError: no widget draws a ProgressState; mlkit._display.WIDGETS names the drawn classes
    """
    for cls in type(state).__mro__:
        spec = WIDGETS.get(f"{cls.__module__}.{cls.__qualname__}")
        if spec is not None:
            return _lookup(spec)
    raise TypeError(
        f"no widget draws a {type(state).__name__}; mlkit._display.WIDGETS names the drawn classes"
    )


def widget(state: object, **kwargs: Any) -> Any:
    """A new live widget drawing ``state`` (needs ipywidgets)."""
    return widget_class(state)(state, **kwargs)


def static_bundle(state: object) -> dict[str, Any]:
    """The static display bundle (HTML and plain text, no widget) of ``state``'s view."""
    bundle: dict[str, Any] = widget_class(state).static_bundle(state)
    return bundle


def open_view(state: object, text: Any = None, **kwargs: Any) -> Any:
    """Show the live view of ``state`` and return it (the caller updates and closes it).

    In a kernel with ipywidgets: its widget (``kwargs`` go to the widget), shown in a slot that
    its ``close()`` turns static. Elsewhere ``text(state)``, a text view, or None without one.
    """
    if can_draw_widgets():
        view = widget(state, **kwargs)
        view.show()
        return view
    return text(state) if text is not None else None


def display_live(obj: Any) -> None:
    """Display ``obj``'s live widget in a kernel, its HTML elsewhere in IPython, else print it.

    ``obj`` needs ``widget()``, ``_repr_html_()`` and ``__str__``.
    """
    if not in_kernel():
        print(obj)
        return
    from IPython.display import display

    if can_draw_widgets():
        display(obj.widget())  # the widget's bundle carries its static HTML and text too
    else:
        display(mimebundle(obj._repr_html_(), str(obj)), raw=True)


def history_chart(state: ProgressState) -> str:
    """The state's metric history as inline SVG charts, the kept step marked ("" without any).

    Examples
    --------
    >>> s = ProgressState("xgboost", total=3, unit="round")
    >>> for i, v in enumerate([0.6, 0.4, 0.5], 1):
    ...     s.update(i, {"valid-logloss": v})
    >>> s.finish("early", best=2)
    >>> chart = history_chart(s)
    >>> chart.count("<svg"), "best round 2" in chart
    (1, True)
    """
    chart: str = _lookup("mlkit.widgets.history:history_svg")(state.history, best=state.best)
    return chart
