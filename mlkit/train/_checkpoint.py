"""Checkpoint folders under the mlkit home: atomic writes, the latest one, pruning.

Paths are computed on the client and handed to the workers (workers do not see the notebook's
environment). A checkpoint is written to a temporary name and renamed, so a crash mid-write never
leaves a file that looks complete.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from mlkit import config
from mlkit.exceptions import ConfigError

__all__ = ["folder", "write_atomic", "latest", "prune", "clear", "step_of"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_STEP_RE = re.compile(r"-(\d+)\.[a-z]+$")


def folder(kind: str, name: str) -> Path:
    """``<mlkit home>/checkpoints/<kind>/<name>``, created (on the client).

    Examples
    --------
    >>> folder("xgboost", "my-model").name        # doctest: +SKIP
    'my-model'
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"name={name!r} cannot name a checkpoint folder: use letters, digits, '_', '-' or '.'"
        )
    return config.home("checkpoints", kind, name)


def write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``."""
    path = Path(path)
    # Keep the suffix: some writers (xgboost's save_model) pick the format from it.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def step_of(path: Path) -> int:
    """The step number in a checkpoint file name (``round-000010.ubj`` -> 10)."""
    m = _STEP_RE.search(Path(path).name)
    return int(m.group(1)) if m else -1


def latest(where: Path, pattern: str) -> Path | None:
    """The checkpoint matching ``pattern`` with the highest step, or None."""
    files = [p for p in Path(where).glob(pattern) if step_of(p) >= 0]
    return max(files, key=step_of) if files else None


def prune(where: Path, pattern: str, keep: int = 2) -> None:
    """Delete all but the ``keep`` newest checkpoints matching ``pattern``."""
    files = sorted((p for p in Path(where).glob(pattern) if step_of(p) >= 0), key=step_of)
    for old in files[:-keep] if keep > 0 else files:
        old.unlink(missing_ok=True)


def clear(where: Path, patterns: tuple[str, ...]) -> None:
    """Delete the checkpoints of an earlier job with the same name (a fresh start)."""
    for pattern in patterns:
        for p in Path(where).glob(pattern):
            p.unlink(missing_ok=True)
