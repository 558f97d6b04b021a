"""Files on the local disk: atomic writes and inter-process locks, one way for every package.

- :func:`atomic_write` writes bytes or text so a reader (another process, the next kernel) sees
  the old content or the new one, never a torn file: the data go to a hidden temporary file in
  the same folder (a rename is atomic only within one file system), are flushed to disk
  (``fsync``), then ``os.replace`` puts the file in place. When anything fails the temporary
  file is removed and the old content is still there. ``mode=0o600`` makes a file only its
  owner can read from its creation on (API keys, tracking credentials): it is never readable
  by others, not even for a moment.
- :func:`atomic_path` is the same for writers that want a path rather than bytes (Parquet,
  ``nbformat``, a model's ``save_model``): write to the path it yields; the file takes its place
  when the block ends without an error. The temporary name keeps the suffix, since some writers
  choose the format from it.
- :func:`lock` holds an exclusive lock on a lock file for a block (``filelock.FileLock``, an
  ``fcntl.flock`` on POSIX), so two kernels that read-modify-write the same file one after the
  other cannot lose an update. The lock file is left in place (unlinking it would split waiters
  across two inodes).

Folders that appear whole (a Parquet data set, a Docker build context) are staged as folders
where they are written (:mod:`mlkit.data._storage`, :mod:`mlkit.serve._docker`), and files in
an object store are put in one request, which S3 and its kin make atomic already; both are not
single-file writes and stay there.

Importing this module is cheap (standard library only; ``filelock`` loads on the first lock).

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> target = atomic_write(folder / "settings.json", '{"workers": 2}')
>>> target.read_text()
'{"workers": 2}'
>>> with lock(folder / "settings.lock"):
...     _ = atomic_write(target, '{"workers": 4}', mode=0o600)
>>> target.read_text(), oct(target.stat().st_mode & 0o777)
('{"workers": 4}', '0o600')
>>> sorted(p.name for p in folder.iterdir())     # no temporary file left beside it
['settings.json', 'settings.lock']
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from mlkit._imports import require

__all__ = ["atomic_write", "atomic_path", "lock"]


def _temp_name(path: Path) -> Path:
    # Hidden (readers that list the folder skip dotfiles), unique per writer (two threads or
    # processes writing the same file never share a temporary), same suffix as the target.
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None,
                 encoding: str = "utf-8") -> Path:
    """Replace the file at ``path`` with ``data`` in one step; returns ``path`` as a Path.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    data : bytes or str
        The whole new content (``str`` is encoded with ``encoding``).
    mode : int, optional
        Permission bits of the new file, e.g. ``0o600`` for a secret: set exactly (the umask does
        not apply) and from the file's creation on. Default: what ``open()`` would give
        (``0o666`` less the umask).
    encoding : str
        Encoding of a ``str`` ``data``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "token"
    >>> atomic_write(p, b"s3cr3t", mode=0o600).read_bytes(), oct(p.stat().st_mode & 0o777)
    (b's3cr3t', '0o600')
    """
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else bytes(data)
    tmp = _temp_name(path)
    # Created 0600 when a mode is asked for, then set to it: never more open than the final mode.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            if mode is not None:
                os.fchmod(out.fileno(), mode)
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it goes.

    For writers that take a file name. The temporary name is hidden, unique and keeps the
    suffix of ``path`` (``.ubj``, ``.parquet``...).

    Parameters
    ----------
    path : str or os.PathLike
        The file the block writes; its folder must exist.
    mode : int, optional
        Permission bits the file gets before it takes its place (default: as the writer made it).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "model.json"
    >>> with atomic_path(p) as tmp:
    ...     (tmp.suffix, tmp.name.startswith("."))
    ...     _ = tmp.write_text("{}")
    ('.json', True)
    >>> p.read_text(), [f.name for f in p.parent.iterdir()]
    ('{}', ['model.json'])
    """
    path = Path(path)
    tmp = _temp_name(path)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # only when the block or the rename failed: after it tmp is gone


@contextlib.contextmanager
def lock(path: str | os.PathLike[str], *, timeout: float | None = None) -> Iterator[Path]:
    """Hold an exclusive inter-process lock on the lock file ``path`` for the block.

    Parameters
    ----------
    path : str or os.PathLike
        The lock file (created when missing, never removed), e.g. ``keys.lock`` beside
        ``keys.json``.
    timeout : float, optional
        Seconds to wait for another holder; None waits as long as it takes. Past it,
        ``filelock.Timeout`` (a ``TimeoutError``) names the lock file.

    Yields
    ------
    pathlib.Path
        The lock file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with lock(pathlib.Path(tempfile.mkdtemp()) / "registry.lock") as held:
    ...     held.name
    'registry.lock'
    """
    filelock = require("filelock", extra="mlflow")
    path = Path(path)
    # A new FileLock per block: each block is its own holder, so two threads of one process
    # serialize on the lock file exactly as two processes do.
    held = filelock.FileLock(str(path), timeout=-1 if timeout is None else timeout)
    held.acquire()
    try:
        yield path
    finally:
        held.release()
