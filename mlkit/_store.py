"""The shared store: one fsspec URL that every host reaches, for state the workers must see.

On one machine mlkit keeps everything in its home folder. When the cluster's workers do not share
the client's disk (found out by the connect preflight, :mod:`mlkit.cluster._preflight`), a path
on the client's disk means nothing to them; state the workers write or read (synthetic data,
checkpoints, prediction logs, job outputs) goes to the shared store instead, set once with

- ``MLKIT_STORE``: any fsspec URL (``s3://bucket/mlkit``, ``gs://...``, ``abfs://...``) or a
  folder on a mount every host shares (``/mnt/shared/mlkit``);
- ``MLKIT_STORE_OPTIONS``: fsspec storage options as JSON, e.g.
  ``{"client_kwargs": {"endpoint_url": "http://minio:9000"}}`` (sent to the workers with every
  path, so they need no configuration of their own beyond credentials);

or in Python with :func:`set_store`.

Examples
--------
>>> import os
>>> os.environ["MLKIT_STORE"] = "s3://bucket/mlkit"
>>> join("data", "demo")
's3://bucket/mlkit/data/demo'
>>> del os.environ["MLKIT_STORE"]
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from mlkit import config
from mlkit.exceptions import ConfigError

__all__ = ["url", "options", "join", "set_store", "is_client_local", "home_relative"]

_SCHEME_ONLY = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/")
# Protocols whose paths only the process (or machine) that made them can see.
_LOCAL_PROTOCOLS = {"file", "local", "memory"}


def url() -> str | None:
    """The shared store URL (``MLKIT_STORE``), or None when unset.

    Examples
    --------
    >>> url() is None or "://" in url() or url().startswith("/")
    True
    """
    raw = os.environ.get("MLKIT_STORE", "").strip()
    if not raw:
        return None
    if "://" not in raw and not raw.startswith("/"):
        raise ConfigError(
            f"MLKIT_STORE={raw!r} is neither a URL nor an absolute folder: use e.g. "
            "s3://bucket/mlkit or /mnt/shared/mlkit"
        )
    return raw.rstrip("/")


def options() -> dict[str, Any]:
    """fsspec storage options for the store (``MLKIT_STORE_OPTIONS``, JSON), default ``{}``."""
    raw = os.environ.get("MLKIT_STORE_OPTIONS", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"MLKIT_STORE_OPTIONS is not JSON ({exc}): {raw!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"MLKIT_STORE_OPTIONS must be a JSON object, but got {raw!r}")
    return value


def set_store(store_url: str | None, **storage_options: Any) -> None:
    """Set (or with None, unset) the shared store for this process and what it starts.

    Examples
    --------
    >>> set_store("s3://bucket/mlkit", client_kwargs={"endpoint_url": "http://s3:9000"})
    >>> url(), options()["client_kwargs"]["endpoint_url"]
    ('s3://bucket/mlkit', 'http://s3:9000')
    >>> set_store(None)
    """
    if store_url is None:
        os.environ.pop("MLKIT_STORE", None)
        os.environ.pop("MLKIT_STORE_OPTIONS", None)
        return
    previous = os.environ.get("MLKIT_STORE")
    os.environ["MLKIT_STORE"] = str(store_url)
    try:
        url()  # validate now, not at first use
    except ConfigError:
        # A refused value must not stay behind: every later store call would fail on it.
        if previous is None:
            os.environ.pop("MLKIT_STORE", None)
        else:
            os.environ["MLKIT_STORE"] = previous
        raise
    if storage_options:
        os.environ["MLKIT_STORE_OPTIONS"] = json.dumps(storage_options)
    else:
        os.environ.pop("MLKIT_STORE_OPTIONS", None)


def join(*parts: str) -> str:
    """A location inside the store (``MLKIT_STORE`` must be set).

    Examples
    --------
    >>> set_store("/mnt/shared/mlkit"); join("checkpoints", "run-1")
    '/mnt/shared/mlkit/checkpoints/run-1'
    >>> set_store(None)
    """
    base = url()
    if base is None:
        raise ConfigError("no shared store is set: set MLKIT_STORE (e.g. s3://bucket/mlkit)")
    clean = [str(p).strip("/") for p in parts if str(p).strip("/")]
    return "/".join([base, *clean])


def protocol_of(path: Any) -> str:
    """The fsspec protocol of a path or URL (``"file"`` for plain paths)."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    if "::" in text:  # a chained URL (simplecache::s3://...): the last link holds the data
        text = text.rsplit("::", 1)[-1]
    if "://" not in text:
        # A URI with a scheme and no authority (MLflow's ``mlflow-artifacts:/0/...``,
        # ``file:/tmp/x``); two letters at least, so ``C:/data`` stays a path.
        m = _SCHEME_ONLY.match(text)
        return m.group(1).lower() if m else "file"
    return text.split("://", 1)[0].lower()


def is_client_local(path: Any) -> bool:
    """True for a path on this machine's disk (or memory): another host cannot see it as such.

    Examples
    --------
    >>> is_client_local("data/x"), is_client_local("file:///tmp/x"), is_client_local("s3://b/x")
    (True, True, False)
    >>> is_client_local("mlflow-artifacts:/0/models/m-1/artifacts")  # served by a tracking server
    False
    """
    return protocol_of(path) in _LOCAL_PROTOCOLS


def home_relative(path: Any) -> str | None:
    """For a local path inside the mlkit home, its part below the home; else None.

    ``<home>/data/demo`` -> ``data/demo``. The mlkit home is where mlkit's own state lives; when
    the workers are remote the same state lives at that part inside the shared store.

    Examples
    --------
    >>> from mlkit import config
    >>> home_relative(config.home_path() / "data" / "demo"), home_relative("/elsewhere")
    ('data/demo', None)
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    if protocol_of(text) != "file":
        return None
    if text.startswith("file://"):
        text = text[len("file://"):]
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = Path.cwd() / p
    try:
        rel = p.resolve().relative_to(config.home_path())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None
