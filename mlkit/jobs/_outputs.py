"""Where executed notebooks go: ``<mlkit home>/jobs/`` unless the caller says otherwise."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

from mlkit.exceptions import JobError

__all__ = ["job_output", "sweep_folder", "job_file_name"]


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _writable_folder(folder: Path, what: str) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"cannot create the {what} folder {str(folder)!r}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise JobError(f"the {what} folder {str(folder)!r} is not writable: choose another")
    return folder


def job_output(notebook: Path, output: str | os.PathLike[str] | None) -> Path:
    """The output notebook path of one job (absolute); its folder is created and checked.

    ``None`` -> ``<home>/jobs/<stem>-<time>-<id>.ipynb``; an existing folder -> a file in it.

    Examples
    --------
    >>> job_output(Path("/nb/train.ipynb"), "/tmp/out.ipynb")
    PosixPath('/tmp/out.ipynb')
    """
    from mlkit import config

    if output is None:
        folder = _writable_folder(config.home("jobs"), "job output")
        return folder / f"{notebook.stem}-{_stamp()}.ipynb"
    path = Path(output).expanduser().resolve()
    if path.is_dir():
        return _writable_folder(path, "output") / f"{notebook.stem}-{_stamp()}.ipynb"
    _writable_folder(path.parent, "output")
    return path


def sweep_folder(notebook: Path, output: str | os.PathLike[str] | None) -> Path:
    """The folder a sweep writes its executed notebooks to (created and checked)."""
    from mlkit import config

    if output is None:
        return _writable_folder(config.home("jobs") / f"{notebook.stem}-sweep-{_stamp()}", "sweep")
    return _writable_folder(Path(output).expanduser().resolve(), "sweep output")


def job_file_name(index: int, parameters: dict[str, Any]) -> str:
    """``003-lr=0.1-depth=4.ipynb``: sortable, readable, safe on every filesystem.

    Examples
    --------
    >>> job_file_name(3, {"lr": 0.1, "opt": "a/b"})
    '003-lr=0.1-opt=a_b.ipynb'
    """
    text = "-".join(f"{k}={v}" for k, v in parameters.items())
    text = re.sub(r"[^A-Za-z0-9._=+-]+", "_", text)[:80]
    return f"{index:03d}-{text}.ipynb" if text else f"{index:03d}.ipynb"
