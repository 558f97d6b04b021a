"""Make a SQLite tracking store safe for many writer processes (8 Dask workers logging at once).

Why this module exists (measured here with MLflow 3.17 and 8 spawned processes):

1. **Schema creation races.** Every process that opens a SQLite store runs MLflow's schema
   migrations when the tables are missing (``SqlAlchemyStore.__init__`` calls
   ``_initialize_tables`` with no lock between processes). Eight workers opening a fresh store at
   once fail with ``duplicate column name: step`` / ``table already exists`` (also reported in
   daizutabi/hydraflow#245 and mlflow/mlflow#4123). :func:`prepare` creates the schema once, under
   an inter-process file lock (``filelock``), before any run is written.
2. **Readers and writers blocking each other.** MLflow sets ``PRAGMA busy_timeout = 20000`` on
   each of its sessions (mlflow/mlflow#6490), so writers queue instead of failing. In SQLite's
   default rollback-journal mode, though, a reader (a store being opened, ``search_runs``) and a
   committing writer exclude each other, and the schema checks MLflow runs when a store is opened
   use the driver's 5 s timeout, not MLflow's. Write-ahead logging (WAL) lets readers proceed
   while one writer commits; it is a persistent property of the database file, so setting it once
   covers every process that opens it (workers, ``mlflow ui``, the scoring server). MLflow turned
   WAL on to cure the same "database is locked" in its own CI (mlflow/mlflow#20014). WAL needs the
   file on a local disk (not NFS); a remote cluster should use a tracking server
   (``MLFLOW_TRACKING_URI=http://...``) anyway, since its workers cannot open a local file.
3. **The rare lock timeout on mlkit's own bookkeeping.** :func:`retry_locked` retries the writes
   that decide a run's final state, so a busy moment never leaves a run RUNNING. A failed SQLite
   write is rolled back by MLflow's session, so retrying cannot duplicate it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlkit._fs import lock

__all__ = ["sqlite_path", "artifact_root_for", "prepare", "retry_locked", "is_locked_error"]

T = TypeVar("T")

_PREPARED: set[str] = set()
_LOCK = threading.Lock()
# Schema creation prints alembic/MLflow INFO lines on stderr; a notebook should not show them.
_QUIET_LOGGERS = ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), or None for other stores.

    Examples
    --------
    >>> str(sqlite_path("sqlite:////tmp/x/mlflow.db"))
    '/tmp/x/mlflow.db'
    >>> sqlite_path("http://127.0.0.1:5000") is None
    True
    """
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().absolute()


def artifact_root_for(uri: str) -> str | None:
    """Artifact root beside a SQLite store (``<db folder>/artifacts``), None for other stores.

    Examples
    --------
    >>> artifact_root_for("sqlite:////tmp/x/mlflow.db")
    'file:///tmp/x/artifacts'
    """
    path = sqlite_path(uri)
    return None if path is None else (path.parent / "artifacts").as_uri()


def prepare(uri: str) -> None:
    """Create the schema of a SQLite store once (under a file lock) and switch it to WAL.

    A no-op for other stores and for a store this process already prepared. Safe to call from
    many processes at once: that is its purpose.

    Examples
    --------
    >>> prepare("sqlite:////tmp/mlkit-doctest/mlflow.db")     # doctest: +SKIP
    """
    path = sqlite_path(uri)
    if path is None or (uri in _PREPARED and path.exists()):
        return
    with _LOCK:
        if uri in _PREPARED and path.exists():
            return
        if uri in _PREPARED:  # the file was deleted (e.g. the mlkit home removed) meanwhile
            _forget_connections(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        with lock(f"{path}.lock", timeout=300), _quiet():
            from mlkit.track._template import copy_into

            copy_into(path)  # a migrated empty store: seconds of migrations saved (best effort)
            _enable_wal(path)
            _create_schema(uri, artifact_root_for(uri))
        _PREPARED.add(uri)


def _forget_connections(uri: str) -> None:
    # MLflow caches one SQLAlchemy engine per URI (``_engine_map`` of its tracking and registry
    # stores, shared by every store object). Its pooled connections still hold the deleted file
    # open, so runs would go on being written into a file nobody can see. Disposing the engines
    # makes their next connection open the path again.
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store in (TrackingStore, RegistryStore):
        engine = getattr(store, "_engine_map", {}).get(uri)
        if engine is not None:
            engine.dispose()


def _enable_wal(path: Path) -> None:
    con = sqlite3.connect(path, timeout=60)
    try:
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        con.close()
    if str(mode).lower() != "wal":  # e.g. a file system without shared memory support
        logging.getLogger(__name__).warning(
            "could not switch the MLflow store %s to WAL mode (it stays %r); concurrent writers "
            "may wait longer for locks", path, mode,
        )


def _create_schema(uri: str, artifact_root: str | None) -> None:
    # Opening MLflow's store creates (or checks) the tables. Opening it with mlkit's artifact root
    # also gives MLflow's "Default" experiment, created at that moment, its artifacts beside the
    # database instead of in ./mlruns of whatever directory the first caller happened to be in.
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    retry_locked(SqlAlchemyStore, uri, artifact_root)


class _quiet:
    def __enter__(self) -> None:
        self._levels = {}
        for name in _QUIET_LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.WARNING)

    def __exit__(self, *exc: Any) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


def is_locked_error(exc: BaseException) -> bool:
    """True if ``exc`` (or its cause) is SQLite's "database is locked" / "busy".

    Examples
    --------
    >>> is_locked_error(RuntimeError("(sqlite3.OperationalError) database is locked"))
    True
    >>> is_locked_error(ValueError("bad value"))
    False
    """
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen).lower()
        if any(m in text for m in ("database is locked", "database table is locked", "is busy")):
            return True
        seen = seen.__cause__
    return False


def retry_locked(
    func: Callable[..., T], *args: Any, attempts: int = 8, first_delay: float = 0.25, **kwargs: Any
) -> T:
    """Call ``func``; on a SQLite lock error wait (0.25 s, doubling up to 5 s) and try again.

    Other errors, and the last lock error, propagate unchanged. Ctrl-C waits for the attempt in
    hand to end (:func:`mlkit._interrupt.deferred`) and comes between attempts: an interrupt
    inside SQLAlchemy could leave this process's own connection holding the write lock, and
    the write that ends the run KILLED would then wait on it.

    Examples
    --------
    >>> retry_locked(sum, [1, 2])
    3
    """
    from mlkit._interrupt import deferred

    delay = first_delay
    for attempt in range(attempts):
        try:
            with deferred():
                return func(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts - 1 or not is_locked_error(exc):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")  # pragma: no cover
