"""Where data lives: fsspec file systems, finding the files behind a path, atomic output.

Every path mlkit accepts (local path, folder, glob, ``file://``, ``s3://``, ``gs://``...) goes
through fsspec, so object stores work like disks. Output is written to a hidden temporary sibling
and renamed at the end: a failed or interrupted write never leaves a half-written dataset.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlkit._imports import require
from mlkit.exceptions import DataError

# Engines are optional extras: require() names the extra to install when one is missing.
fsspec = require("fsspec")
url_to_fs = require("fsspec.core").url_to_fs

__all__ = ["Located", "locate", "staged_output", "FORMATS"]

# file suffix -> format name; compressed CSV is recognised through the inner suffix
FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")


def _is_hidden(path: str) -> bool:
    # Same rule as pyarrow's dataset discovery: _metadata, _SUCCESS, .crc files are not data.
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.startswith(("_", "."))


def format_of(path: str) -> str | None:
    """The format a file name implies (``"parquet"``/``"csv"``) or None."""
    name = path.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


@dataclass(frozen=True)
class Located:
    """The resolved form of a user's path: its file system, the data files and their format."""

    path: str
    fs: Any
    files: list[str]
    format: str
    glob: bool = False

    def urls(self) -> list[str]:
        """The files as URLs the file system understands again (protocol included)."""
        return [self.fs.unstrip_protocol(f) for f in self.files]

    def shown(self, file: str) -> str:
        """``file`` as the user would write it: a plain path if they typed one, else a URL."""
        if "://" not in self.path and not self.path.startswith("file:"):
            return file
        return self.fs.unstrip_protocol(file)


def _as_text(path: Any) -> str:
    if isinstance(path, os.PathLike):
        return os.fspath(path)
    if isinstance(path, str):
        return path
    raise DataError(f"path must be a string or os.PathLike, but got {path!r}")


def locate(
    path: Any, format: str | None = None, storage_options: dict[str, Any] | None = None
) -> Located:
    """Find the data files behind ``path`` (file, folder or glob) and decide their format.

    Raises :class:`DataError` for a missing path, an empty folder or an unknown format.

    Examples
    --------
    >>> loc = locate("data/*.csv")              # doctest: +SKIP
    >>> loc.format, len(loc.files)              # doctest: +SKIP
    ('csv', 3)
    """
    text = _as_text(path)
    try:
        fs, root = url_to_fs(text, **(storage_options or {}))
    except (ValueError, ImportError) as exc:
        raise DataError(f"cannot open {text!r}: {exc}") from exc
    if fmt_given := format:
        fmt_given = str(format).lower()
        if fmt_given not in ("parquet", "csv"):
            raise DataError(
                f"unknown format {format!r} for {text!r}: use format='parquet' or format='csv'"
            )
    is_glob = any(ch in root for ch in "*?[")
    if is_glob:
        files = sorted(f for f in fs.glob(root) if not _is_hidden(f) and fs.isfile(f))
        if not files:
            raise DataError(f"no files match {text!r}: check the pattern and the folder")
    elif not fs.exists(root):
        raise DataError(f"{text!r} does not exist: check the path (and storage_options for URLs)")
    elif fs.isdir(root):
        prefix = root.rstrip("/")
        files = sorted(
            f
            for f in fs.find(prefix)
            if not any(_is_hidden(part) for part in f[len(prefix):].split("/") if part)
        )
        if not files:
            raise DataError(f"folder {text!r} holds no data files (empty dataset)")
    else:
        files = [root]

    if fmt_given:
        return Located(text, fs, files, fmt_given, is_glob)
    kinds = {format_of(f) for f in files}
    if None in kinds:
        odd = next(f for f in files if format_of(f) is None)
        raise DataError(
            f"unknown format for {fs.unstrip_protocol(odd)!r}: mlkit reads Parquet (.parquet, .pq) "
            "and CSV (.csv, .tsv, optionally compressed); pass format='parquet' or format='csv'"
        )
    if len(kinds) > 1:
        raise DataError(
            f"{text!r} mixes Parquet and CSV files: point at one kind (a glob such as "
            "'folder/*.parquet') or pass format="
        )
    return Located(text, fs, files, kinds.pop(), is_glob)


@contextlib.contextmanager
def staged_output(
    path: Any, overwrite: bool = False, storage_options: dict[str, Any] | None = None
) -> Iterator[tuple[Any, str]]:
    """Yield ``(fs, temp_path)``; on success the temp folder becomes ``path``, else it is removed.

    The temporary folder is a hidden sibling (``.name.tmp-<uuid>``), so readers of the parent
    folder never mistake it for data. An existing ``path`` is an error unless ``overwrite``.

    Examples
    --------
    >>> with staged_output("out/data.parquet") as (fs, tmp):   # doctest: +SKIP
    ...     write_everything_to(tmp)
    """
    text = _as_text(path)
    fs, root = url_to_fs(text, **(storage_options or {}))
    root = root.rstrip("/")
    if fs.exists(root) and not overwrite:
        raise DataError(
            f"{text!r} already exists: choose another path or pass overwrite=True"
        )
    parent, _, name = root.rpartition("/")
    hidden = f".{name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp = f"{parent}/{hidden}" if parent else hidden
    fs.makedirs(tmp, exist_ok=True)
    try:
        yield fs, tmp
        _replace(fs, tmp, root)
    except BaseException:
        with contextlib.suppress(Exception):
            if fs.exists(tmp):
                fs.rm(tmp, recursive=True)
        raise


def _replace(fs: Any, tmp: str, root: str) -> None:
    local = isinstance(fs, fsspec.implementations.local.LocalFileSystem)
    if fs.exists(root):
        if local:
            # Move the old one aside first so the swap leaves one or the other, never a mix.
            trash = f"{tmp}.old"
            os.replace(root, trash)
            os.replace(tmp, root)
            fs.rm(trash, recursive=True)
            return
        fs.rm(root, recursive=True)
    if local:
        os.replace(tmp, root)
    else:
        # Object stores have no rename: copy file by file (fsspec's recursive mv also tries to
        # copy the folder's own key, which S3 has not got), then delete the staging prefix.
        sources = fs.find(tmp)
        fs.copy(sources, [root + s[len(tmp):] for s in sources])
        fs.rm(tmp, recursive=True)
        fs.invalidate_cache()
