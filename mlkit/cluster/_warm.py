"""Warm-up after a cluster starts: what the first study or training would otherwise pay.

A new kernel's first ``mlkit.tune`` call used to take about three times the same call right
after it: creating the MLflow store's schema (a SQLite file and its migrations) and importing
Optuna and mlkit's trial code on every worker. None of that depends on the call, so it starts
the moment the cluster is up, while the user is still reading the widget or loading data:

- the store's schema is created by a short-lived subprocess (under the store's file lock, so a
  first run meanwhile simply waits for it). Not by a thread in the kernel: a background
  ``import mlflow`` racing the user's own first ``import mlflow`` in the main thread ends in
  ``_DeadlockError`` on MLflow's circular imports and a half-imported module;
- each worker runs one small task that imports the engines, before any task of the user's on a
  one-thread worker;
- the kernel imports Optuna, mlkit's tuning driver and, with tracking on, MLflow (and its SQL
  store, when the store is SQLite) itself, in the main thread, while it waits for a new local
  cluster's workers to start: the one moment the kernel is idle anyway. MLflow was most of what a
  first tracked study still paid (about 4-6 s here), and only the main thread can import it
  safely (see above). On 2 cores the workers' own start competes for the CPU, so ``up`` takes
  longer by part of that time; with more cores the two overlap.

It changes nothing the user's code could see: the same store is created, the same modules get
imported, only earlier. ``MLKIT_WARM=0`` turns it off.

Examples
--------
>>> enabled({"MLKIT_WARM": "0"})
False
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["start", "enabled", "import_engines", "import_in_kernel"]

logger = logging.getLogger(__name__)

_PREPARE = "import sys; from mlkit.track._store import prepare; prepare(sys.argv[1])"


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """False when ``MLKIT_WARM`` is ``0``/``false``/``no``/``off``."""
    return env.get("MLKIT_WARM", "1").strip().lower() not in ("0", "false", "no", "off")


def import_engines() -> list[str]:
    """The warm-up task on a worker: import what a trial imports first; returns what loaded."""
    loaded = []
    for name in ("optuna", "mlkit.tune._task"):
        with contextlib.suppress(Exception):  # an engine not installed there: nothing to warm
            __import__(name)
            loaded.append(name)
    return loaded


def import_in_kernel() -> list[str]:
    """Import what the first study imports in the kernel; returns what this loaded.

    Only in the main thread (a second thread importing MLflow deadlocks against it); MLflow only
    when tracking is on; an engine not installed is skipped and a broken install is left for its
    first real use to report.

    Examples
    --------
    >>> isinstance(import_in_kernel(), list)
    True
    """
    if not enabled() or threading.current_thread() is not threading.main_thread():
        return []
    import importlib.util

    try:
        names = ["optuna", "mlkit.tune._tune"] if importlib.util.find_spec("optuna") else []
        from mlkit.track._defaults import tracking_uri
        from mlkit.track._state import enabled as tracking_on
        from mlkit.track._store import sqlite_path

        if tracking_on() and importlib.util.find_spec("mlflow") is not None:
            names.append("mlflow")
            if sqlite_path(tracking_uri()) is not None:
                names.append("mlflow.store.tracking.sqlalchemy_store")
        loaded = [n for n in names if n not in sys.modules]
        for name in loaded:
            importlib.import_module(name)
        return loaded
    except Exception as exc:  # noqa: BLE001 - optional: the first real use reports it
        logger.debug("warm-up imports in the kernel stopped: %s", exc)
        return []


def _prepare_store(uri: str | None) -> subprocess.Popen | None:
    from mlkit.track._store import sqlite_path

    path = sqlite_path(uri) if uri else None
    if path is None or path.exists():
        return None
    proc = subprocess.Popen(
        [sys.executable, "-c", _PREPARE, str(uri)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # out of the kernel's Interrupt, like every process mlkit starts
    )
    # Reaped by a thread that imports nothing (no zombie left behind).
    threading.Thread(target=proc.wait, name="mlkit-warm-up", daemon=True).start()
    return proc


def start(client: Any) -> subprocess.Popen | None:
    """Start the warm-up; returns the store-creating subprocess (None if none was needed)."""
    if not enabled():
        return None
    with contextlib.suppress(Exception):  # a closing cluster: nothing to warm
        workers = list(client.scheduler_info(n_workers=-1)["workers"])
        futures = [client.submit(import_engines, key=f"mlkit-warm-up-{i}-{w}", workers=[w],
                                 allow_other_workers=False, pure=False)
                   for i, w in enumerate(workers)]
        from distributed import fire_and_forget

        fire_and_forget(futures)
    try:
        from mlkit.track._defaults import tracking_uri

        return _prepare_store(tracking_uri())
    except Exception as exc:  # tracking is optional; its first real use reports any problem
        logger.debug("warm-up of the tracking store skipped: %s", exc)
        return None
