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

from mlkit._display import link_html
from mlkit._imports import require
from mlkit.cluster._status import ClusterStatus, format_bytes
from mlkit.widgets._refresh import Refreshing

__all__ = ["ClusterWidget"]


class ClusterWidget(Refreshing):
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

    _thread_name = "mlkit-cluster-widget"

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
        self._address = ""  # the last address seen, so a stopped cluster still names itself
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.slots: list[Any] = []  # every output showing this widget (see show())
        self._shown_key: tuple[Any, ...] | None = None
        self.refresh()
        if autostart:
            self.start()

    # -- polling -------------------------------------------------------------------------------
    def refresh(self) -> ClusterStatus:
        """Read the cluster's status once and redraw (and refresh every output showing it)."""
        with self._lock:
            if getattr(self.cluster, "closed", False):
                st = self._stopped()
            else:
                try:
                    st = self.cluster.status()
                except Exception as exc:  # scheduler gone: draw the stopped state
                    st = self._stopped()
                    self.message.value = f"<i>status unavailable: {html.escape(str(exc))}</i>"
            if st.running:
                self._address = st.address
                if self.last_status is None or self.last_status.n_workers != st.n_workers:
                    # scaled (here or elsewhere): the box follows the real count
                    self.scale_box.value = max(1, st.n_workers)
            self.last_status = st
            self.draw(st)
            self._publish(st)
        return st

    def _stopped(self) -> ClusterStatus:
        return ClusterStatus(self.cluster.kind, self._address or "", None, [], running=False)

    # -- drawing -------------------------------------------------------------------------------
    def draw(self, st: ClusterStatus) -> None:
        e = html.escape
        where = f" <code>{e(st.address)}</code>" if st.address else ""
        self.title.value = f"<b>mlkit cluster</b> ({e(st.kind)}){where}"
        if not st.running:
            self.summary.value = "<b>stopped</b>"
            self.memory_bar.value = 0.0
            self.memory_bar.bar_style = ""
            self.memory_label.value = ""
            self.gpu_table.value = ""
            self.dashboard.value = ""
            for control in (self.scale_box, self.scale_button, self.stop_button):
                control.disabled = True
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
        self.dashboard.value = f"dashboard: {link_html(link)}" if link else "dashboard: off"
        if getattr(st, "preflight", None) is not None:  # workers on other hosts: what they reach
            self.dashboard.value += st.preflight._repr_html_()
        # A joined cluster is scaled where it was started; an SSHCluster by its hosts list.
        can_scale = self.cluster.deploy is not None and getattr(self.cluster, "scalable", True)
        self.scale_box.disabled = not can_scale
        self.scale_button.disabled = not can_scale
        self.stop_button.disabled = False

    # -- display -------------------------------------------------------------------------------
    def show(self) -> None:
        """Display the widget in a new output whose static fallback follows the cluster."""
        from mlkit._display import Slot

        slot = Slot()
        slot.show(self._repr_mimebundle_())
        if slot.shown:
            self.slots.append(slot)
            self._shown_key = self._key(self.last_status)

    @staticmethod
    def _key(st: ClusterStatus | None) -> tuple[Any, ...] | None:
        if st is None:
            return None
        return (st.running, st.address, st.n_workers, st.threads, st.dashboard_link)

    def _publish(self, st: ClusterStatus) -> None:
        """Keep every output's static HTML in step with the cluster (scale, stop); a stopped
        cluster's outputs become static, so the saved notebook shows the final state."""
        key = self._key(st)
        if not self.slots or key == self._shown_key:
            return
        self._shown_key = key
        data = self._static_bundle() if not st.running else self._repr_mimebundle_()
        for slot in self.slots:
            try:
                slot.update(data)
            except Exception:  # no display here any more (kernel shutting down)
                pass

    def _static_bundle(self) -> dict[str, Any]:
        from mlkit._display import mimebundle

        st = self.last_status
        assert st is not None
        return mimebundle(st._repr_html_(), str(st))

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """ipywidgets' view of the box plus the status as static HTML and text (dask's way)."""
        from mlkit._display import mimebundle

        st = self.last_status
        assert st is not None
        return mimebundle(st._repr_html_(), str(st), None if not st.running else self.box)

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
        self.show()

