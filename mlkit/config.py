"""Defaults, ``MLKIT_*`` environment overrides and the mlkit home folder.

All state mlkit writes (MLflow store, Optuna journals, server registry, logs, checkpoints) lives
in one home folder: ``.mlkit/`` in the working directory unless ``MLKIT_HOME`` says otherwise.

Environment variables
---------------------
MLKIT_HOME          state folder (default ``./.mlkit``)
MLKIT_HOST          address servers, schedulers and dashboards bind to (default ``127.0.0.1``)
MLKIT_WORKERS       default number of CPU workers for ``cluster.up`` (default: one per core, max 4)
MLKIT_THREADS       default threads per worker (default 1)
MLKIT_MEMORY_LIMIT  default memory limit per worker (default ``"auto"``)
MLKIT_DASHBOARD     ``0`` disables the Dask dashboard (default ``1``)
MLKIT_STORE         the shared store (any fsspec URL or a shared mount) for state the workers must
                    see when they are on other hosts: checkpoints, logs, job outputs, data
MLKIT_STORE_OPTIONS fsspec storage options for the store, as JSON
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlkit.exceptions import ConfigError

__all__ = ["Settings", "settings", "home", "home_path", "store", "set_store", "store_path"]


def _env_int(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, but got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be >= 1, but got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """A snapshot of mlkit's configuration, read from the environment.

    Examples
    --------
    >>> from mlkit.config import settings
    >>> settings().host
    '127.0.0.1'
    """

    home: Path
    host: str
    workers: int | None
    threads_per_worker: int
    memory_limit: str
    dashboard: bool


def settings() -> Settings:
    """Read the current settings (environment variables are read on every call).

    Examples
    --------
    >>> s = settings()
    >>> s.threads_per_worker >= 1
    True
    """
    return Settings(
        home=home_path(),
        host=os.environ.get("MLKIT_HOST", "127.0.0.1"),
        workers=_env_int("MLKIT_WORKERS", None),
        threads_per_worker=_env_int("MLKIT_THREADS", 1) or 1,
        memory_limit=os.environ.get("MLKIT_MEMORY_LIMIT", "auto"),
        dashboard=os.environ.get("MLKIT_DASHBOARD", "1") not in ("0", "false", "False", "no"),
    )


def home_path() -> Path:
    """The mlkit home folder, without creating it.

    Examples
    --------
    >>> home_path().is_absolute()     # resolved: the same folder whatever the cwd later is
    True
    """
    raw = os.environ.get("MLKIT_HOME")
    return Path(raw).expanduser().resolve() if raw else (Path.cwd() / ".mlkit").resolve()


def home(*parts: str) -> Path:
    """The mlkit home folder (or a sub-folder of it), created on first use.

    Parameters
    ----------
    *parts : str
        Sub-folder names, e.g. ``home("servers")``.

    Examples
    --------
    >>> p = home("logs")
    >>> p.is_dir()
    True
    """
    path = home_path().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the mlkit home folder {path}: {exc.strerror}; "
            "set MLKIT_HOME to a writable folder"
        ) from exc
    return path


def store() -> str | None:
    """The shared store URL (``MLKIT_STORE``), or None. See :mod:`mlkit._store`.

    Examples
    --------
    >>> set_store("s3://bucket/mlkit"); store()
    's3://bucket/mlkit'
    >>> set_store(None); store() is None
    True
    """
    from mlkit import _store

    return _store.url()


def set_store(url: str | None, **storage_options: object) -> None:
    """Set the shared store for this process (``MLKIT_STORE``); None unsets it.

    ``storage_options`` are fsspec options (``MLKIT_STORE_OPTIONS``), sent to the workers with
    every path in the store.

    Examples
    --------
    >>> set_store("s3://bucket/mlkit", client_kwargs={"endpoint_url": "http://s3:9000"})
    >>> set_store(None)
    """
    from mlkit import _store

    _store.set_store(url, **storage_options)


def store_path(*parts: str) -> str:
    """A location in the shared store, e.g. ``store_path("data", "sales")``.

    Examples
    --------
    >>> set_store("s3://bucket/mlkit"); store_path("data", "sales")
    's3://bucket/mlkit/data/sales'
    >>> set_store(None)
    """
    from mlkit import _store

    return _store.join(*parts)
