"""Warm-up after a cluster starts: what the first study or training would otherwise pay.

A new kernel's first ``mlkit.tune`` call used to take about three times the same call right
after it: creating the MLflow store's schema (a SQLite file and its migrations) and importing
Optuna and mlkit's trial code on every worker. None of that depends on the call, so it starts
the moment the cluster is up, while the user is still reading the widget or loading data:

- the store's schema is created under the store's file lock (a first run meanwhile simply waits
  for it): by the kernel itself when it has just imported MLflow (below), otherwise by a
  short-lived subprocess. Never by a thread in the kernel: a background ``import mlflow``
  racing the user's own first ``import mlflow`` in the main thread ends in ``_DeadlockError``
  on MLflow's circular imports and a half-imported module;
- each worker runs one small task that imports the engines, before any task of the user's on a
  one-thread worker; for a new local cluster it is queued as soon as the client exists, so the
  workers import while the kernel does;
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
import weakref
from collections.abc import Mapping
from typing import Any

__all__ = ["start", "enabled", "import_engines", "import_in_kernel", "warm_workers"]

logger = logging.getLogger(__name__)

_PREPARE = "import sys; from mlkit.track._store import prepare; prepare(sys.argv[1])"
_RUN_START_IMPORTS = ("git", "IPython", "filelock")
# The workers each client's warm-up has reached (a worker is warmed once per client).
_WARMED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


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

        uri = tracking_uri()
        sqlite = False
        if tracking_on() and importlib.util.find_spec("mlflow") is not None:
            names.append("mlflow")
            # What the first run's start imports besides: its context tags (GitPython, and
            # IPython for MLflow's Databricks check, present already in a kernel) and mlkit's
            # store lock. 0.5 s of a cold study's 0.9 s over the warm one here.
            names += [n for n in _RUN_START_IMPORTS if importlib.util.find_spec(n) is not None]
            sqlite = sqlite_path(uri) is not None
            if sqlite:
                names.append("mlflow.store.tracking.sqlalchemy_store")
        loaded = [n for n in names if n not in sys.modules]
        for name in loaded:
            importlib.import_module(name)
        if sqlite:
            # MLflow is imported in this process now, so its store is created here as well
            # (a copy of a migrated template: a tenth of a second) rather than by a subprocess
            # that imports MLflow a second time, on CPU the first study's trials then lack.
            from mlkit.track._store import prepare

            prepare(uri)
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


def warm_workers(client: Any) -> set[str]:
    """Queue the import task on every worker the scheduler lists now; returns their addresses.

    Called as soon as a new local cluster's client exists (its workers have started by then),
    so the workers import while the kernel does its own imports, not after.
    """
    if not enabled():
        return set()
    done = _WARMED.get(client, set())
    with contextlib.suppress(Exception):  # a closing cluster: nothing to warm
        workers = [w for w in client.scheduler_info(n_workers=-1)["workers"] if w not in done]
        futures = [client.submit(import_engines, key=f"mlkit-warm-up-{w}", workers=[w],
                                 allow_other_workers=False, pure=False)
                   for w in workers]
        from distributed import fire_and_forget

        fire_and_forget(futures)
        done = done | set(workers)
        _WARMED[client] = done
    return done


def start(client: Any) -> subprocess.Popen | None:
    """Start the warm-up; returns the store-creating subprocess (None if none was needed)."""
    if not enabled():
        return None
    warm_workers(client)  # the workers not warmed yet
    try:
        from mlkit.track._defaults import tracking_uri
        from mlkit.track._state import enabled as tracking_on

        # Tracking off: no MLflow store is made (it used to be, by this subprocess).
        return _prepare_store(tracking_uri()) if tracking_on() else None
    except Exception as exc:  # tracking is optional; its first real use reports any problem
        logger.debug("warm-up of the tracking store skipped: %s", exc)
        return None
