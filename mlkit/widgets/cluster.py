"""The live cluster widget: workers, threads, memory bar, one row per GPU, dashboard link, a
scale box and a stop button.

Refreshing runs on a daemon thread so the kernel never blocks; the thread ends when the cluster
goes away or the widget is closed. The drawing (:meth:`ClusterWidget.draw`) is separate from the
polling, so tests drive it headless with :meth:`ClusterWidget.refresh`.
"""

from __future__ import annotations

import html
import threading
from typing import Any

from mlkit._imports import require
from mlkit.cluster._status import ClusterStatus, format_bytes

__all__ = ["ClusterWidget"]


class ClusterWidget:
    """Live view of a :class:`mlkit.cluster.Cluster`.

    Parameters
    ----------
    cluster : mlkit.cluster.Cluster
        The handle to watch and control.
    interval : float
        Seconds between refreshes.
    autostart : bool
        Start the background refresh thread (tests pass False and call ``refresh()``).

    Examples
    --------
    >>> w = ClusterWidget(mlkit.cluster.up(workers=1))   # doctest: +SKIP
    >>> w.scale_box.value = 2; w.scale_button.click()   # doctest: +SKIP
    """

    def __init__(self, cluster: Any, interval: float = 2.0, autostart: bool = True) -> None:
        widgets = require("ipywidgets")
        self.cluster = cluster
        self.interval = interval
        self.title = widgets.HTML()
        self.summary = widgets.HTML()
        self.memory_bar = widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, description="memory", bar_style="info"
        )
        self.memory_label = widgets.Label()
        self.gpu_table = widgets.HTML()
        self.dashboard = widgets.HTML()
        self.message = widgets.HTML()
        self.scale_box = widgets.BoundedIntText(
            value=1, min=1, max=1024, description="workers", layout=widgets.Layout(width="160px")
        )
        self.scale_button = widgets.Button(description="Scale", icon="arrows-v")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop")
        self.scale_button.on_click(self._on_scale)
        self.stop_button.on_click(self._on_stop)
        controls = widgets.HBox([self.scale_box, self.scale_button, self.stop_button])
        self.box = widgets.VBox(
            [
                self.title,
                self.summary,
                widgets.HBox([self.memory_bar, self.memory_label]),
                self.gpu_table,
                self.dashboard,
                controls,
                self.message,
            ]
        )
        self.last_status: ClusterStatus | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()
        if self.last_status is not None and self.last_status.running:
            self.scale_box.value = max(1, self.last_status.n_workers)
        if autostart:
            self.start()

    # -- polling -------------------------------------------------------------------------------
    def refresh(self) -> ClusterStatus:
        """Read the cluster's status once and redraw."""
        try:
            st = self.cluster.status()
        except Exception as exc:  # scheduler gone: draw the stopped state, keep the kernel alive
            st = ClusterStatus(self.cluster.kind, "?", None, [], running=False)
            self.message.value = f"<i>status unavailable: {html.escape(str(exc))}</i>"
        self.last_status = st
        self.draw(st)
        return st

    def start(self) -> None:
        """Start refreshing in the background (no-op if already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mlkit-cluster-widget", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background refresh."""
        self._stop.set()

    @property
    def refreshing(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            st = self.refresh()
            if not st.running:
                break

    # -- drawing -------------------------------------------------------------------------------
    def draw(self, st: ClusterStatus) -> None:
        e = html.escape
        self.title.value = f"<b>mlkit cluster</b> ({e(st.kind)}) <code>{e(st.address)}</code>"
        if not st.running:
            self.summary.value = "<b>stopped</b>"
            self.memory_bar.value = 0.0
            self.memory_label.value = ""
            self.gpu_table.value = ""
            self.dashboard.value = ""
            self.scale_button.disabled = True
            self.stop_button.disabled = True
            return
        self.summary.value = f"workers: <b>{st.n_workers}</b> &nbsp; threads: <b>{st.threads}</b>"
        frac = st.memory_used / st.memory_limit if st.memory_limit else 0.0
        self.memory_bar.value = min(1.0, frac)
        self.memory_bar.bar_style = (
            "danger" if frac > 0.8 else ("warning" if frac > 0.6 else "info")
        )
        self.memory_label.value = (
            f"{format_bytes(st.memory_used)} / {format_bytes(st.memory_limit)}"
        )
        if st.gpus:
            rows = "".join(
                f"<tr><td>GPU {g.index}</td><td>{e(g.name)}</td><td>"
                f"{format_bytes(g.memory_used)} / {format_bytes(g.memory_total)}</td>"
                f"<td>{g.utilization}%</td></tr>"
                for g in st.gpus
            )
            self.gpu_table.value = (
                "<table><tr><th>GPU</th><th>name</th><th>memory</th><th>util</th></tr>"
                f"{rows}</table>"
            )
        else:
            self.gpu_table.value = "<i>no GPUs</i>"
        link = st.dashboard_link
        self.dashboard.value = (
            f'dashboard: <a href="{e(link)}" target="_blank">{e(link)}</a>'
            if link
            else "dashboard: off"
        )
        if getattr(st, "preflight", None) is not None:  # workers on other hosts: what they reach
            self.dashboard.value += st.preflight._repr_html_()
        can_scale = self.cluster.deploy is not None
        self.scale_button.disabled = not can_scale
        self.stop_button.disabled = False

    # -- controls ------------------------------------------------------------------------------
    def _on_scale(self, _button: Any = None) -> None:
        n = int(self.scale_box.value)
        self.message.value = f"scaling to {n} workers ..."
        try:
            self.cluster.scale(n)
            self.message.value = f"scaled to {n} workers"
        except Exception as exc:  # shown in the widget; a button callback must not raise
            self.message.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
        self.refresh()

    def _on_stop(self, _button: Any = None) -> None:
        self.stop()
        try:
            self.cluster.down()
            self.message.value = "cluster stopped"
        except Exception as exc:
            self.message.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
        self.refresh()

    def close(self) -> None:
        """Stop refreshing and close the underlying widgets."""
        self.stop()
        self.box.close()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)
