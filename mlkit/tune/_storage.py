"""Where a study lives: an Optuna storage that the client and every worker can reach.

The default is Optuna's JournalStorage with the file backend under the mlkit home: append-only,
safe for many processes on one machine (SQLite is not: "database is locked"), durable across
cluster restarts, and readable by plain Optuna later. Other choices:

- any Optuna RDB URL (``postgresql://...``, ``mysql+pymysql://...``) for clusters that span
  machines; ``sqlite:///...`` works but locks under many writers;
- ``redis://...``: JournalStorage over Redis;
- a file path: a journal file there (e.g. on a shared NFS folder);
- ``"dask"``: optuna-integration's DaskStorage, an in-memory storage that lives in the Dask
  scheduler, for clusters without a shared file system or database. It is gone when the
  scheduler stops, so a study in it can only be continued while the cluster runs;
- an Optuna storage object (it must pickle, to travel to the workers).

A :class:`StorageSpec` is the small, picklable description the client sends with every task;
:func:`open_storage` turns it into a storage, once per process (a JournalStorage replays its log
when built, so rebuilding it for every trial would cost a full read of the file each time).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkit import config
from mlkit._imports import require
from mlkit.exceptions import TuneError

__all__ = ["StorageSpec", "resolve", "open_storage", "default_journal_path", "DASK_STORAGE_NAME"]

# One DaskStorage per cluster, under a fixed name: a later tune() call with the same study_name
# finds the study again while the scheduler lives.
DASK_STORAGE_NAME = "mlkit-tune"
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql", "cockroachdb")


def default_journal_path() -> Path:
    """The journal file mlkit's studies use by default: ``<mlkit home>/optuna/journal.log``.

    Examples
    --------
    >>> default_journal_path().name
    'journal.log'
    """
    return config.home_path() / "optuna" / "journal.log"


@dataclass(frozen=True)
class StorageSpec:
    """How to open a study storage in any process of the cluster.

    ``kind`` is ``"journal"`` (``target`` = file path), ``"rdb"`` (URL), ``"redis"`` (URL),
    ``"dask"`` (DaskStorage name) or ``"object"`` (``obj`` is the storage itself).
    """

    kind: str
    target: str
    obj: Any = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        if self.kind == "journal":
            return f"the journal file {self.target}"
        if self.kind == "dask":
            return "the Dask scheduler's in-memory storage (DaskStorage)"
        if self.kind == "object":
            return f"the storage object {type(self.obj).__name__}"
        return f"the storage {_redact(self.target)}"

    @property
    def shared(self) -> bool:
        """False for a storage only this process can see (InMemoryStorage)."""
        if self.kind != "object":
            return True
        optuna = require("optuna")
        return not isinstance(self.obj, optuna.storages.InMemoryStorage)


def _redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


def resolve(storage: Any) -> StorageSpec:
    """Turn the ``storage=`` argument into a :class:`StorageSpec`; touches nothing on disk.

    Examples
    --------
    >>> resolve("postgresql://u@db/optuna").kind
    'rdb'
    >>> resolve("dask").kind
    'dask'
    """
    if storage is None:
        return StorageSpec("journal", str(default_journal_path()))
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if isinstance(storage, str):
        text = storage.strip()
        if not text:
            raise TuneError("storage must not be empty: leave it None for the default journal")
        if text == "dask":
            return StorageSpec("dask", DASK_STORAGE_NAME)
        scheme = text.split("://", 1)[0].split("+", 1)[0].lower() if "://" in text else ""
        if scheme in ("redis", "rediss"):
            return StorageSpec("redis", text)
        if scheme in _RDB_SCHEMES:
            return StorageSpec("rdb", text)
        if scheme == "file":
            return StorageSpec("journal", str(Path(text.split("://", 1)[1]).resolve()))
        if scheme:
            raise TuneError(
                f"storage {text!r} has an unknown scheme {scheme!r}: use a database URL "
                "(postgresql://, mysql://, sqlite:///), redis://, a journal file path, 'dask', "
                "or None for the default journal under the mlkit home"
            )
        return StorageSpec("journal", str(Path(text).expanduser().resolve()))
    optuna = require("optuna")
    if isinstance(storage, optuna.storages.BaseStorage):
        return StorageSpec("object", type(storage).__name__, storage)
    raise TuneError(
        f"storage must be None, a URL or file path string, 'dask' or an Optuna storage object, "
        f"but got {type(storage).__name__} {storage!r}"
    )


def check_reachable(spec: StorageSpec) -> None:
    """Fail early, writing nothing, if the storage cannot be opened from this process."""
    if spec.kind == "journal":
        folder = Path(spec.target).parent
        if Path(spec.target).is_dir():
            raise TuneError(f"storage {spec.target} is a folder: give a journal file path in it")
        if spec.target != str(default_journal_path()):
            if not folder.is_dir():
                raise TuneError(
                    f"cannot use the journal file {spec.target}: its folder {folder} does not "
                    "exist; create it first or choose another path"
                )
            if not os.access(folder, os.W_OK):
                raise TuneError(
                    f"cannot write the journal file {spec.target}: {folder} is read-only"
                )
        return
    if spec.kind == "rdb":
        try:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url
        except ImportError as exc:  # pragma: no cover - sqlalchemy comes with optuna
            raise TuneError(f"storage {spec.target!r} needs SQLAlchemy: {exc}") from exc
        try:
            url = make_url(spec.target)
        except Exception as exc:
            raise TuneError(f"storage {spec.target!r} is not a valid database URL: {exc}") from None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            folder = Path(url.database).expanduser().resolve().parent
            if not folder.is_dir():
                raise TuneError(
                    f"cannot reach the storage {_redact(spec.target)}: the folder {folder} of the "
                    "SQLite file does not exist"
                )
        try:
            # A bare connection with a trivial query: reaches the server, creates no table.
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                engine.dispose()
        except ModuleNotFoundError as exc:
            raise TuneError(
                f"storage {_redact(spec.target)} needs the database driver {exc.name!r}: "
                f"pip install {exc.name}"
            ) from None
        except Exception as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise TuneError(
                f"cannot reach the storage {_redact(spec.target)}: {reason}. Check that the "
                "database server is running and the URL (host, port, user, database) is right"
            ) from None
        return
    if spec.kind == "redis":
        try:
            import redis
        except ImportError:
            raise TuneError(
                f"storage {spec.target!r} needs the redis package: pip install redis"
            ) from None
        try:
            redis.Redis.from_url(spec.target, socket_connect_timeout=5).ping()
        except Exception as exc:
            raise TuneError(
                f"cannot reach the storage {_redact(spec.target)}: {exc}. Check that Redis is "
                "running and the URL is right"
            ) from None


# -- opening, once per process ------------------------------------------------------------------
_CACHE: OrderedDict[tuple[str, str], tuple[Any, Any]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 32


def _journal_identity(path: str) -> Any:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def open_storage(spec: StorageSpec, client: Any = None) -> Any:
    """The Optuna storage for ``spec``, built once per process and reused.

    Parameters
    ----------
    spec : StorageSpec
        From :func:`resolve`.
    client : distributed.Client, optional
        For ``"dask"``: the client whose scheduler holds the storage (inside a task the
        worker's own client is used).

    Examples
    --------
    >>> st = open_storage(resolve(None))   # doctest: +SKIP
    """
    if spec.kind == "object":
        return spec.obj
    if spec.kind == "dask":
        from optuna_integration import DaskStorage  # imported here: see _build

        if client is not None:
            # The driver registers the storage with the scheduler (a no-op if it is there).
            with _quiet_experimental():
                return DaskStorage(name=spec.target, client=client)
        import distributed

        key = (spec.kind, f"{spec.target}@{distributed.get_worker().scheduler.address}")
    else:
        key = (spec.kind, spec.target)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            storage, ident = hit
            # A journal file deleted or replaced behind our back: replay the new one.
            if spec.kind != "journal" or ident == _journal_identity(spec.target):
                _CACHE.move_to_end(key)
                return storage
        storage = _build(spec)
        ident = _journal_identity(spec.target) if spec.kind == "journal" else None
        _CACHE[key] = (storage, ident)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return storage


def _build(spec: StorageSpec) -> Any:
    optuna = require("optuna")
    journal = require("optuna.storages.journal")
    if spec.kind == "journal":
        return journal.JournalStorage(journal.JournalFileBackend(spec.target))
    if spec.kind == "rdb":
        try:
            return optuna.storages.RDBStorage(spec.target)
        except Exception as exc:
            raise TuneError(f"cannot open the storage {_redact(spec.target)}: {exc}") from None
    if spec.kind == "redis":
        return journal.JournalStorage(journal.JournalRedisBackend(spec.target))
    if spec.kind == "dask":
        # Imported here, not at module level: a task whose closure captures the
        # optuna_integration module object cannot be pickled.
        DaskStorage = require("optuna_integration").DaskStorage
        with _quiet_experimental():
            return DaskStorage(name=spec.target, register=False)
    raise TuneError(f"unknown storage kind {spec.kind!r}")  # pragma: no cover


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    """DaskStorage is marked experimental; choosing it is deliberate, so do not warn each time."""
    import warnings

    ExperimentalWarning = require("optuna.exceptions").ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield
