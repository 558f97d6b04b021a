"""A container build context for a model, by MLflow's own generator (no Docker engine needed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlkit.exceptions import ServeError

__all__ = ["dockerfile", "check_out_dir", "staged"]


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` resolved; refused (ServeError) when it exists and is not an empty folder."""
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ServeError(
            f"output folder {str(out_dir)!r} already exists and is not empty: "
            "choose a new folder (mlkit never overwrites a build context)"
        )
    return out


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary folder next to ``out``, renamed to ``out`` when the block succeeds.

    Whatever fails inside the block, nothing is left behind: no half-written context at ``out``
    and no temporary folder beside it.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would follow the context into images and copies
        yield tmp
        if out.exists():
            out.rmdir()  # empty (checked by check_out_dir)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def dockerfile(model: Any, out_dir: str | Path, *, timeout: float = 600.0) -> Path:
    """Write a Docker build context (``Dockerfile`` + ``model_dir/``) that serves ``model``.

    Runs ``mlflow models generate-dockerfile -m MODEL -d DIR``: the image it describes installs
    the model's requirements and serves it with MLflow's scoring server on port 8080. The
    context is generated in a temporary folder next to ``out_dir`` and renamed into place, so a
    failure leaves nothing half-written.

    Parameters
    ----------
    model : str or pathlib.Path
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH`` or a local folder.
    out_dir : str or pathlib.Path
        Folder to create; it must not exist yet (or be empty).

    Returns
    -------
    pathlib.Path
        ``out_dir``. Build it with ``docker build -t NAME out_dir``.

    Examples
    --------
    >>> mlkit.serve.dockerfile("models:/iris@champion", "build/iris")    # doctest: +SKIP
    PosixPath('build/iris')
    """
    from mlkit import track
    from mlkit.serve import _process
    from mlkit.serve._models import resolve

    out = check_out_dir(out_dir)
    tracking_uri = track.tracking_uri()
    ref = resolve(model, tracking_uri)
    with staged(out) as tmp:
        log = tmp.parent / f"{tmp.name}.log"
        cmd = [*_process.mlflow_command(), "models", "generate-dockerfile", "-m", ref.uri,
               "-d", str(tmp)]
        try:
            with open(log, "wb") as handle:
                proc = subprocess.run(
                    cmd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=_process.server_env(tracking_uri), timeout=timeout, check=False,
                )
            if proc.returncode != 0 or not (tmp / "Dockerfile").is_file():
                raise ServeError(
                    f"mlflow models generate-dockerfile failed for {str(model)!r} "
                    f"(exit code {proc.returncode}):\n{_process.tail(log)}"
                )
        except subprocess.TimeoutExpired:
            raise ServeError(
                f"mlflow models generate-dockerfile took longer than {timeout:g} s for "
                f"{str(model)!r}"
            ) from None
        finally:
            log.unlink(missing_ok=True)
    return out
