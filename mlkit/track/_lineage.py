"""Lineage: where a run came from, as MLflow tags (``dict[str, str]``).

Recorded by :func:`lineage_tags` (and so on every ``mlkit.track.run``):

==============================  ============================================================
``mlkit.git.commit``             HEAD of the git repository holding the working directory
``mlkit.git.branch``             its branch (absent when detached)
``mlkit.git.dirty``              ``"true"`` if tracked files differ from HEAD (untracked files
                                 do not count, as in ``git describe --dirty``)
``mlkit.git.root``               the repository's top folder
``mlflow.source.git.commit``     the same commit under MLflow's own key, so the UI shows it
``mlkit.notebook``               the notebook's path, when it can be known (see below)
``mlflow.source.name/type``      the notebook path and ``NOTEBOOK``, for the MLflow UI
``mlkit.python``                 Python version; ``mlkit.platform`` the OS
``mlkit.pkg.<name>``             versions of key packages (from metadata: nothing is imported)
``mlkit.cluster.*``              kind, workers, threads, memory, gpus (only if a cluster is
                                 active in this process; never starts one)
``mlkit.worker``                 the Dask worker's address, when the run is opened in a task
==============================  ============================================================

Notebook path, first found wins: the ``MLKIT_NOTEBOOK`` environment variable (set it when
launching a kernel yourself, e.g. for papermill, which does not tell the kernel its notebook),
VS Code's ``__vsc_ipynb_file__``, ipykernel's ``__session__`` (Jupyter server >= 2 passes the
notebook path as ``JPY_SESSION_NAME`` and ipykernel copies it there), then ``JPY_SESSION_NAME``
itself. JupyterLab reports it relative to the server's root folder.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

__all__ = ["lineage_tags", "git_tags", "notebook_path", "environment_tags", "cluster_tags"]

KEY_PACKAGES = (
    "mlkit",
    "mlflow",
    "dask",
    "distributed",
    "dask-cuda",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "xgboost",
    "torch",
    "optuna",
)


def lineage_tags(cwd: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Everything mlkit records about where a run comes from, as MLflow tags.

    Every part is best effort: a missing git, a broken cluster or an unknown notebook leaves its
    tags out rather than failing the run.

    Parameters
    ----------
    cwd : path, optional
        Folder whose git repository to describe (default: the working directory).

    Examples
    --------
    >>> tags = lineage_tags()
    >>> tags["mlkit.python"] == platform.python_version()
    True
    """
    tags: dict[str, str] = {}
    tags.update(git_tags(cwd))
    nb = notebook_path()
    if nb:
        tags.update(
            {"mlkit.notebook": nb, "mlflow.source.name": nb, "mlflow.source.type": "NOTEBOOK"}
        )
    tags.update(environment_tags())
    tags.update(cluster_tags())
    return tags


def _git(args: list[str], cwd: str | os.PathLike[str] | None) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            # Reading status must not take .git/index.lock: others may be committing right now.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):  # no git binary, a hung file system
        return None
    return out.stdout if out.returncode == 0 else None


def git_tags(cwd: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Commit, branch, dirty flag and root of the git repository holding ``cwd``.

    Empty when ``cwd`` is not in a repository, the repository has no commit yet, or git is not
    installed. One ``git status --porcelain=v2 --branch`` call gives commit, branch and changes.

    Examples
    --------
    >>> sorted(git_tags("/"))
    []
    """
    status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], cwd)
    if status is None:
        return {}
    commit = branch = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2].strip()
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2].strip()
        elif line and not line.startswith("#"):
            dirty = True
    if not commit or commit == "(initial)":
        return {}
    tags = {
        "mlkit.git.commit": commit,
        "mlkit.git.dirty": "true" if dirty else "false",
        "mlflow.source.git.commit": commit,
    }
    if branch and branch != "(detached)":
        tags["mlkit.git.branch"] = branch
        tags["mlflow.source.git.branch"] = branch
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    if root:
        tags["mlkit.git.root"] = root.strip()
    return tags


def notebook_path() -> str | None:
    """The running notebook's path when the kernel can know it, else None.

    Examples
    --------
    >>> os.environ["MLKIT_NOTEBOOK"] = "analysis/churn.ipynb"
    >>> notebook_path()
    'analysis/churn.ipynb'
    >>> del os.environ["MLKIT_NOTEBOOK"]
    """
    explicit = os.environ.get("MLKIT_NOTEBOOK")
    if explicit:
        return explicit
    ipython = sys.modules.get("IPython")  # only look if IPython is already there: never import
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        for key in ("__vsc_ipynb_file__", "__session__"):
            value = shell.user_ns.get(key)
            if isinstance(value, str) and value.endswith(".ipynb"):
                return value
    session = os.environ.get("JPY_SESSION_NAME", "")
    return session if session.endswith(".ipynb") else None


def environment_tags() -> dict[str, str]:
    """Python version, OS and the versions of key installed packages (read from metadata).

    Examples
    --------
    >>> environment_tags()["mlkit.pkg.mlkit"]
    '0.1.0'
    """
    return dict(_environment_tags())


@functools.lru_cache(maxsize=1)
def _environment_tags() -> dict[str, str]:
    tags = {
        "mlkit.python": platform.python_version(),
        "mlkit.platform": platform.platform(terse=True),
    }
    for dist in KEY_PACKAGES:
        try:
            tags[f"mlkit.pkg.{dist}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return tags


def cluster_tags() -> dict[str, str]:
    """The active cluster (kind, workers, threads, memory, GPUs), or the worker a task runs on.

    Looks only at a cluster this process already has: it never starts or joins one.

    Examples
    --------
    >>> cluster_tags()
    {}
    """
    tags: dict[str, str] = {}
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            tags["mlkit.worker"] = str(get_worker().address)
        except (ValueError, ImportError):  # not inside a task ("No worker found")
            pass
    # mlkit.cluster not imported yet means no cluster was started here; don't import it for nothing.
    core = sys.modules.get("mlkit.cluster._core")
    handle = core.current() if core is not None else None
    if handle is None or getattr(handle, "closed", False):
        return tags
    try:
        info: dict[str, Any] = handle.client.scheduler_info(n_workers=-1)
    except Exception:  # a cluster going down while we look: record what we know
        info = {}
    workers = info.get("workers", {})
    tags["mlkit.cluster.kind"] = str(handle.kind)
    if info:
        tags["mlkit.cluster.workers"] = str(len(workers))
        threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
        tags["mlkit.cluster.threads"] = str(threads)
        memory = sum(int(w.get("memory_limit") or 0) for w in workers.values())
        if memory:
            tags["mlkit.cluster.memory"] = str(memory)
    gpus = list(getattr(handle, "gpus", []) or [])
    tags["mlkit.cluster.gpus"] = str(len(gpus))
    if gpus:
        tags["mlkit.cluster.gpu_names"] = ", ".join(sorted({g.name for g in gpus}))
    return tags
