"""Checkpoint folders under the mlkit home: atomic writes, the latest one, pruning.

Paths are computed on the client and handed to the workers (workers do not see the notebook's
environment). A checkpoint is written to a temporary name and renamed, so a crash mid-write never
leaves a file that looks complete.

When the workers do not share the client's disk (the connect preflight), the folder is in the
shared store instead (``MLKIT_STORE``, an fsspec URL such as ``s3://bucket/mlkit``): then
"where" is a URL string, a checkpoint is written locally and uploaded as one object (an object
appears whole or not at all), and the workers use their own credentials for the store. Without
a store, the artifact store of mlkit's tracking server (``mlkit.track.serve_tracking()``) holds
them when it runs (an ``mlflow-artifacts://`` URL); with neither, asking for a checkpoint folder
on such a cluster is refused up front.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlkit import config
from mlkit._fs import atomic_path
from mlkit.exceptions import ConfigError

__all__ = [
    "folder", "local_folder", "write_atomic", "latest", "prune", "clear", "step_of", "as_where",
    "join", "glob",
    "exists", "read_text", "local_copy", "with_suffix", "use_options",
]

Where = Path | str  # a local folder, or a URL in the shared store


def _is_url(where: Any) -> bool:
    return isinstance(where, str) and "://" in where and not where.startswith("file://")


# fsspec options for folders in the shared store, as the client handed them to this process
# (a worker does not see the notebook's MLKIT_STORE_OPTIONS): URL prefix -> options.
_OPTIONS: dict[str, dict[str, Any]] = {}


def use_options(prefix: str, options: dict[str, Any]) -> None:
    """Use ``options`` for every URL under ``prefix`` in this process (a worker's copy of the
    client's ``MLKIT_STORE_OPTIONS``)."""
    if options and _is_url(prefix):
        _OPTIONS[prefix.rstrip("/")] = dict(options)


def _fs(where: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    from mlkit import _store

    if where.startswith(_store.url() or "\0"):
        return url_to_fs(where, **_store.options())
    for prefix, options in _OPTIONS.items():
        if where.startswith(prefix):
            return url_to_fs(where, **options)
    return url_to_fs(where)


def as_where(text: str | Path) -> Where:
    """A folder as handed to a worker (str) back to a Path, or a URL kept as is."""
    return text if _is_url(text) else Path(text)


def join(where: Where, name: str) -> Where:
    return f"{where.rstrip('/')}/{name}" if _is_url(where) else Path(where) / name


def with_suffix(path: Where, suffix: str) -> Where:
    if _is_url(path):
        return re.sub(r"\.[^./]*$", suffix, str(path))
    return Path(path).with_suffix(suffix)


def glob(where: Where, pattern: str) -> list[Where]:
    if _is_url(where):
        fs, root = _fs(where)
        fs.invalidate_cache()
        return [fs.unstrip_protocol(f) for f in fs.glob(f"{root.rstrip('/')}/{pattern}")]
    return list(Path(where).glob(pattern))


def exists(path: Where) -> bool:
    if _is_url(path):
        fs, p = _fs(path)
        return fs.exists(p)
    return Path(path).exists()


def _unlink(path: Where) -> None:
    if _is_url(path):
        fs, p = _fs(path)
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(p)
    else:
        Path(path).unlink(missing_ok=True)


def read_text(path: Where) -> str:
    if _is_url(path):
        fs, p = _fs(path)
        with fs.open(p, "r") as f:
            return f.read()
    return Path(path).read_text()


@contextlib.contextmanager
def local_copy(path: Where) -> Iterator[str]:
    """A local file name holding ``path``'s bytes (the file itself when it is local)."""
    if not _is_url(path):
        yield str(path)
        return
    fs, p = _fs(path)
    with tempfile.TemporaryDirectory(prefix="mlkit-ckpt-") as tmp:
        local = os.path.join(tmp, p.rsplit("/", 1)[-1])
        fs.get_file(p, local)
        yield local


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_STEP_RE = re.compile(r"-(\d+)\.[a-z]+$")


def folder(kind: str, name: str) -> Where:
    """``<mlkit home>/checkpoints/<kind>/<name>``, created (on the client).

    On a cluster whose workers do not share the client's disk: the same place in the shared
    store (a URL), or :class:`~mlkit.exceptions.ClientOnlyPathError` when none is set.

    Examples
    --------
    >>> folder("xgboost", "my-model").name        # doctest: +SKIP
    'my-model'
    """
    _check_name(name)
    from mlkit.cluster._preflight import place

    # Without a shared store, mlkit's tracking server's artifact store (every worker reaches it).
    where, _ = place(config.home_path() / "checkpoints" / kind / name, "the checkpoint folder",
                     tracking_artifacts=True)
    if _is_url(where):
        return str(where)
    return config.home("checkpoints", kind, name)


def local_folder(kind: str, name: str) -> Path:
    """``<mlkit home>/checkpoints/<kind>/<name>`` on this machine, whatever the cluster."""
    _check_name(name)
    return config.home("checkpoints", kind, name)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"name={name!r} cannot name a checkpoint folder: use letters, digits, '_', '-' or '.'"
        )


def write_atomic(path: Where, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path`` (upload it, for a
    URL: one object put, which appears whole or not at all)."""
    if _is_url(path):
        fs, p = _fs(str(path))
        with tempfile.TemporaryDirectory(prefix="mlkit-ckpt-") as tmp:
            local = os.path.join(tmp, p.rsplit("/", 1)[-1])
            write(local)
            fs.put_file(local, p)
        return
    # The temporary keeps the suffix: some writers (xgboost's save_model) pick the format from it.
    with atomic_path(path) as tmp:
        write(str(tmp))


def step_of(path: Where) -> int:
    """The step number in a checkpoint file name (``round-000010.ubj`` -> 10)."""
    m = _STEP_RE.search(Path(path).name)
    return int(m.group(1)) if m else -1


def latest(where: Where, pattern: str) -> Where | None:
    """The checkpoint matching ``pattern`` with the highest step, or None."""
    files = [p for p in glob(where, pattern) if step_of(p) >= 0]
    return max(files, key=step_of) if files else None


def prune(where: Where, pattern: str, keep: int = 2) -> None:
    """Delete all but the ``keep`` newest checkpoints matching ``pattern``."""
    files = sorted((p for p in glob(where, pattern) if step_of(p) >= 0), key=step_of)
    for old in files[:-keep] if keep > 0 else files:
        _unlink(old)


def clear(where: Where, patterns: tuple[str, ...]) -> None:
    """Delete the checkpoints of an earlier job with the same name (a fresh start)."""
    for pattern in patterns:
        for p in glob(where, pattern):
            _unlink(p)
