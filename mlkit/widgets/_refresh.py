"""Background refresh shared by the live widgets (cluster, serve): one thread per widget that
calls ``refresh()`` every ``interval`` seconds until the watched thing stops running."""

from __future__ import annotations

import threading


class Refreshing:
    """Mixin: needs ``interval``, ``_stop`` (a threading.Event), ``_thread`` and a ``refresh()``
    returning a state with ``running``; ``_thread_name`` names the thread."""

    interval: float
    _stop: threading.Event
    _thread: threading.Thread | None
    _thread_name = "mlkit-widget"

    def start(self) -> None:
        """Start refreshing in the background (no-op if already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background refresh."""
        self._stop.set()

    @property
    def refreshing(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                state = self.refresh()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - a failed read is retried at the next tick
                # This thread writes into whichever cell runs now: a traceback from it would
                # land in the user's (or nbval's) unrelated cell. The next tick tries again.
                continue
            if not state.running:
                break
