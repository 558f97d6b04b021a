"""Shared fixtures: an isolated mlkit home per test and one real LocalCluster reused across
tests (``mlkit.cluster.up`` returns the running cluster when the spec matches).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

# Test modules share helpers as ``from tests._wait import wait_for``; with
# --import-mode=importlib the repository root must be importable for that.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest

# Two worker processes, one thread each: the shape of this 2-core CI machine.
CLUSTER_SPEC = {"workers": 2, "threads_per_worker": 1, "memory_limit": "2GB"}


def pytest_configure(config):
    os.environ.setdefault("MLKIT_DASHBOARD", "0")  # tests never need the bokeh dashboard
    # MLflow's usage telemetry posts from every process that imports it (kernels, workers,
    # servers); the test machines reach no outside host, so each would only wait for it.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # A shell starts background commands (`make test &`, CI runners) with SIGINT ignored, and
    # Python then keeps ignoring it: the tests that press the stop button (a real SIGINT,
    # tests/_stop.py) would wait forever. Give the process Python's usual Ctrl-C back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# mlflow.set_experiment() also writes MLFLOW_EXPERIMENT_ID into os.environ; left behind, it names
# an experiment of a previous test's store to every later test and to every kernel or server
# a test starts (which then fails: "MLFLOW_EXPERIMENT_ID ... does not exist").
MLFLOW_PROCESS_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@pytest.fixture(autouse=True)
def mlkit_home(tmp_path, monkeypatch):
    """Every test gets its own mlkit home; MLflow uses its default store inside it."""
    home = tmp_path / "mlkit-home"
    monkeypatch.setenv("MLKIT_HOME", str(home))
    for name in MLFLOW_PROCESS_ENV:
        monkeypatch.delenv(name, raising=False)
    yield home
    for name in MLFLOW_PROCESS_ENV[1:]:
        os.environ.pop(name, None)


@pytest.fixture
def cluster():
    """A real 2-worker LocalCluster (started once, reused while its spec matches)."""
    import mlkit

    return mlkit.cluster.up(**CLUSTER_SPEC)


@pytest.fixture
def client(cluster):
    return cluster.client


@pytest.fixture
def fresh_cluster():
    """A cluster of its own for tests that break or reshape it; stopped afterwards."""
    import mlkit

    mlkit.cluster.down()
    c = mlkit.cluster.up(**CLUSTER_SPEC)
    yield c
    mlkit.cluster.down()


@pytest.fixture
def shell():
    """A real IPython InteractiveShell with the mlkit extension loaded."""
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or __import__("IPython").get_ipython()
    ip.run_line_magic("load_ext", "mlkit")
    yield ip
    ip.user_ns.pop("client", None)


@pytest.fixture(scope="session", autouse=True)
def _stop_cluster_at_end():
    yield
    import mlkit

    mlkit.cluster.down()
    shutil.rmtree("dask-scratch-space", ignore_errors=True)


def has_gpu() -> bool:
    from mlkit.cluster import gpus

    return bool(gpus())


def pytest_collection_modifyitems(config, items):
    if any("gpu" in item.keywords for item in items) and not has_gpu():
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU (NVML sees none)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
