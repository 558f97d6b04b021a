"""Fixtures for notebook jobs: behaviour-named notebooks (papermill's style) and a module-wide
mlkit home, so one real execution can serve several assertions (kernel starts are slow)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests._wait import wait_until_false

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture(scope="session")
def notebooks() -> Path:
    return NOTEBOOKS


@pytest.fixture(scope="session", autouse=True)
def _venv_first_on_path():
    """Kernels and `mlkit` subprocesses come from the venv this test runs in."""
    import sys

    bin_dir = str(Path(sys.executable).parent)
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = bin_dir + os.pathsep + old
    yield
    os.environ["PATH"] = old


@pytest.fixture(scope="module")
def job_home(tmp_path_factory):
    """An mlkit home for one test module's shared executions (set while module fixtures run;
    each test still gets its own home from tests/conftest.py's ``mlkit_home``)."""
    home = tmp_path_factory.mktemp("jobs-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLKIT_HOME", str(home))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield home
    mp.undo()


@pytest.fixture
def mlflow_client():
    """``mlflow_client(home)``: an MlflowClient on that home's SQLite store."""
    import mlflow

    def make(home: Path):
        return mlflow.MlflowClient(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")

    return make


def _kernel_children() -> list:
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if any("ipykernel" in part for part in p.cmdline()) and p.status() != "zombie":
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture
def no_kernel_left():
    """Asserts after the test that every kernel this process started is gone."""
    yield
    wait_until_false(_kernel_children, timeout=60, what="every kernel of the job gone")
