"""The live serve widget: a gateway route's replicas (host, state), req/s, p50 / p99, batch size
and errors, refreshed in the background.

It draws :class:`mlkit.serve._live.ServeStatus` snapshots read by
:class:`~mlkit.serve._live.ServeMonitor` (the gateway's own listing and ``/metrics``); it
computes nothing. Its display bundle carries the snapshot as static HTML and text beside the
widget view, and once the gateway stops every output showing it becomes that static final
state, so a saved notebook keeps it.
"""

from __future__ import annotations

import threading
from typing import Any

from mlkit._imports import require
from mlkit.widgets._refresh import Refreshing

__all__ = ["ServeWidget"]


class ServeWidget(Refreshing):
    """Live view of a gateway route (``serve.start(model, replicas=N)``'s handle).

    Parameters
    ----------
    server : GatewayServer
        The route to watch.
    interval : float
        Seconds between reads of the gateway.
    autostart : bool
        Start the background refresh (tests pass False and call :meth:`refresh`).

    Examples
    --------
    >>> w = ServeWidget(mlkit.serve.start("models:/iris@champion", replicas=2))  # doctest: +SKIP
    >>> w.last_status.rps                                                         # doctest: +SKIP
    41.5
    """

    _thread_name = "mlkit-serve-widget"

    def __init__(self, server: Any, interval: float = 1.0, autostart: bool = True) -> None:
        widgets = require("ipywidgets")
        from mlkit.serve._live import ServeMonitor

        self.server = server
        self.interval = interval
        self.monitor = ServeMonitor(server)
        self.title = widgets.HTML()
        self.replica_table = widgets.HTML()
        self.stats = widgets.HTML()
        self.box = widgets.VBox([self.title, self.replica_table, self.stats])
        self.last_status: Any = None
        self.slots: list[Any] = []
        self._shown_running = True
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()
        if autostart:
            self.start()

    def refresh(self) -> Any:
        """Read the gateway once and redraw (a stopped gateway turns every output static)."""
        with self._lock:
            st = self.monitor.poll()
            self.last_status = st
            self.draw(st)
            if self.slots and self._shown_running and not st.running:
                self._shown_running = False
                from mlkit._display import mimebundle

                for slot in self.slots:
                    try:
                        slot.update(mimebundle(st._repr_html_(), str(st)))
                    except Exception:  # noqa: BLE001 - no display any more (kernel ending)
                        pass
        return st

    def draw(self, st: Any) -> None:
        import html

        e = html.escape
        state = "running" if st.running else "<b>stopped</b>"
        self.title.value = (f"<b>mlkit gateway</b> <code>{e(st.route)}</code> version "
                            f"{e(st.version)}: {state}")
        colour = {"up": "#2a7", "starting": "#c80", "down": "#b00"}
        rows = "".join(
            f"<tr><td>{r.index}</td><td><code>{e(r.host)}</code></td>"
            f"<td style='color:{colour.get(r.state, '#888')}'>{e(r.state)}</td>"
            f"<td>{r.pid or '-'}</td><td>{r.restarts}</td><td>{r.inflight}</td></tr>"
            for r in st.replicas)
        self.replica_table.value = (
            "<table><tr><th>replica</th><th>host</th><th>state</th><th>pid</th>"
            f"<th>restarts</th><th>in flight</th></tr>{rows}</table>")
        self.stats.value = " &nbsp; ".join(f"{k}: <b>{e(v)}</b>" for k, v in st._stats())

    def show(self) -> None:
        """Display the widget in a new output whose static fallback ends as the final state."""
        from mlkit._display import Slot

        slot = Slot()
        slot.show(self._repr_mimebundle_())
        if slot.shown:
            self.slots.append(slot)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        from mlkit._display import mimebundle

        st = self.last_status
        return mimebundle(st._repr_html_(), str(st), self.box if st.running else None)

    def _ipython_display_(self) -> None:
        self.show()

    def close(self) -> None:
        """Stop refreshing and close the widgets."""
        self.stop()
        self.box.close()
