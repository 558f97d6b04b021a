"""Warm-up after a cluster starts: what the first study or training would otherwise pay.

A new kernel's first ``mlkit.tune`` call used to take about three times the same call right
after it: importing Optuna and MLflow in the notebook, creating the MLflow store's schema (a
SQLite file with its migrations), and importing Optuna and mlkit's trial code on every worker.
None of that depends on the call, so it starts in the background the moment the cluster is up,
while the user is still reading the widget or loading data. It changes nothing that the user's
code would see: the same modules get imported, the same store gets created, only earlier.
``MLKIT_WARM=0`` turns it off.

Examples
--------
>>> import os
>>> enabled({"MLKIT_WARM": "0"})
False
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["start", "enabled", "worker_side", "client_side"]

logger = logging.getLogger(__name__)


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """False when ``MLKIT_WARM`` is ``0``/``false``/``no``."""
    return env.get("MLKIT_WARM", "1").strip().lower() not in ("0", "false", "no", "off")


def _import_engines() -> None:
    for name in ("optuna", "mlkit.tune._task", "mlkit.data"):
        with contextlib.suppress(Exception):  # an engine not installed there: nothing to warm
            __import__(name)


def worker_side() -> None:
    """Run on each worker (``client.run``): import what a trial and a training task import
    first, in a thread of its own (``client.run`` calls this in the worker's event loop, which
    must stay free for heartbeats and tasks)."""
    threading.Thread(target=_import_engines, name="mlkit-warm-up", daemon=True).start()


def client_side(client: Any, uri: str | None) -> None:
    """In the notebook (a background thread): start the workers' half, import the engines and
    create the SQLite MLflow store ``uri`` if it is missing."""
    with contextlib.suppress(Exception):  # a worker that left meanwhile: nothing to warm there
        client.run(worker_side)
    with contextlib.suppress(Exception):
        __import__("optuna")
    try:
        from mlkit.track import _store

        if uri is not None and _store.sqlite_path(uri) is not None:
            _store.prepare(uri)  # under its own lock: a first run meanwhile simply waits for it
        else:
            __import__("mlflow")
    except Exception as exc:  # tracking is optional; its first real use reports any problem
        logger.debug("warm-up of the tracking store skipped: %s", exc)


def start(client: Any) -> threading.Thread | None:
    """Start both halves in the background; returns the client-side thread (None if off)."""
    if not enabled():
        return None
    try:
        from mlkit.track._defaults import tracking_uri

        uri: str | None = tracking_uri()  # now: the home may change before the thread runs
    except Exception:
        uri = None
    thread = threading.Thread(target=client_side, args=(client, uri), name="mlkit-warm-up",
                              daemon=True)
    thread.start()
    return thread
