"""The warm-up after ``cluster.up``: the first study need not pay imports and the store."""

from __future__ import annotations

import sys

import mlkit
from tests._wait import wait_for


def _imported(name):
    return name in sys.modules


def test_up_warms_the_workers_and_creates_the_store_in_the_background(mlkit_home):
    store = mlkit_home / "mlflow" / "mlflow.db"
    assert not store.exists()
    c = mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit="1GB", replace=True)
    try:
        wait_for(store.exists, timeout=300, what="the MLflow store created by the warm-up")
        wait_for(lambda: all(c.client.run(_imported, "optuna").values()), timeout=300,
                 what="optuna imported on the worker")
        # the store is complete: a run goes in at once
        with mlkit.track.run("first"):
            pass
    finally:
        mlkit.cluster.down()


_UP_THEN_IMPORT = (
    "import sys, mlkit\n"
    "mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit='1GB')\n"
    "from mlkit.track._defaults import tracking_uri\n"
    "from mlkit.track._store import sqlite_path\n"
    "print('optuna' in sys.modules, 'mlflow' in sys.modules,\n"
    "      'mlflow.store.tracking.sqlalchemy_store' in sys.modules, 'git' in sys.modules,\n"
    "      sqlite_path(tracking_uri()).exists())\n"
    "import mlflow\n"
    "assert callable(mlflow.active_run)\n"
    "mlkit.cluster.down()\nprint('ok')"
)


def _up_in_a_new_process(mlkit_home, **env):
    import os
    import subprocess

    out = subprocess.run([sys.executable, "-c", _UP_THEN_IMPORT], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "MLKIT_HOME": str(mlkit_home), **env})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-2]


def test_up_imports_optuna_and_mlflow_in_the_kernel_while_the_workers_start(mlkit_home):
    # In the main thread, while up() waits for the workers: a warm-up that imported MLflow in a
    # kernel *thread* raced the user's own first import (_DeadlockError, a half-imported mlflow).
    # The import after up() is whole, and a first tracked study no longer pays for it: nor for
    # what its first run imports (GitPython, for the run's git tags), nor for the store, which
    # the kernel created itself once it had MLflow (before up() returned, no subprocess).
    assert _up_in_a_new_process(mlkit_home) == "True True True True True"


def test_up_imports_no_mlflow_with_tracking_off_and_nothing_with_warm_up_off(mlkit_home):
    # Tracking off makes no MLflow store either, not even after up() returned: the second
    # call below, in the same home, finds none.
    assert _up_in_a_new_process(mlkit_home, MLKIT_TRACK="0") == "True False False False False"
    assert _up_in_a_new_process(mlkit_home, MLKIT_WARM="0") == "False False False False False"


def test_mlkit_warm_0_turns_it_off(mlkit_home, monkeypatch):
    monkeypatch.setenv("MLKIT_WARM", "0")
    c = mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit="1GB", replace=True)
    try:
        # a task runs after anything queued on the worker before it
        assert c.client.submit(_imported, "optuna", pure=False).result() is False
        assert not (mlkit_home / "mlflow" / "mlflow.db").exists()
    finally:
        mlkit.cluster.down()
