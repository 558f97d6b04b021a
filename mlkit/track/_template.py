"""An empty, fully migrated SQLite MLflow store, built once per MLflow version and copied.

Why: opening a new SQLite store makes MLflow run every schema migration it ships (alembic, ~60
tables): measured 2-4 s per new store here, on every fresh mlkit home, every job's or test's
store, and on the user's first tracked call. Copying an already-migrated empty file and opening
it takes ~0.2 s (MLflow sees the schema at its head revision and only adds its "Default"
experiment, with the new store's own artifact root).

The template lives in the user's cache folder (``$XDG_CACHE_HOME/mlkit`` or ``~/.cache/mlkit``,
``MLKIT_CACHE_DIR`` to choose another): it holds no runs, no experiment and nothing of the user's,
so it is a cache, not state, and any failure to build or copy it falls back to MLflow's own
creation. Its name carries MLflow's version, so an upgraded MLflow builds a new one.

Examples
--------
>>> from mlkit.track._template import cache_dir
>>> cache_dir().name
'mlkit'
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from mlkit._fs import atomic_path, lock

__all__ = ["cache_dir", "template", "copy_into"]

_log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``MLKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlkit``, else ``~/.cache/mlkit``."""
    if os.environ.get("MLKIT_CACHE_DIR"):
        return Path(os.environ["MLKIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlkit"


def template() -> Path:
    """The empty migrated store for the installed MLflow (built under a file lock if missing)."""
    import mlflow

    folder = cache_dir()
    path = folder / f"mlflow-{mlflow.__version__}-empty-store.db"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with lock(f"{path}.lock", timeout=300):
        if path.exists():  # another process built it while we waited
            return path
        with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
            db = Path(tmp) / "store.db"
            _build(db, Path(tmp) / "artifacts")
            with atomic_path(path) as out:
                shutil.copyfile(db, out)
    return path


def _build(db: Path, artifacts: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{db}"
    SqlAlchemyStore(uri, str(artifacts))
    engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(uri, None)
    if engine is not None:
        engine.dispose()  # MLflow caches one engine per URI; this one's file is about to go
    con = sqlite3.connect(db)
    try:
        # The "Default" experiment points at this build's artifact folder: drop it, and MLflow
        # creates it again, with the real store's artifact root, when the copy is opened.
        con.execute("DELETE FROM experiment_tags")
        con.execute("DELETE FROM experiments")
        con.commit()
        con.execute("VACUUM")
    finally:
        con.close()


def copy_into(path: Path) -> bool:
    """Put a copy of the template at ``path`` (which must not exist); False if it could not.

    Never raises: the caller then lets MLflow create the schema itself.

    Examples
    --------
    >>> copy_into(Path("/tmp/mlkit-doctest-store/mlflow.db"))      # doctest: +SKIP
    True
    """
    wal = path.with_name(path.name + "-wal")  # a stale log beside a new file would corrupt it
    if path.exists() or wal.exists() or os.environ.get("MLKIT_STORE_TEMPLATE", "1") == "0":
        return False
    try:
        src = template()
        with atomic_path(path) as out:
            shutil.copyfile(src, out)
        return True
    except Exception as exc:  # a read-only cache, a full disk: MLflow's own creation still works
        _log.debug("no MLflow store template (%s); MLflow creates the schema", exc)
        return False
