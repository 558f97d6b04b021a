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


def test_a_first_import_of_mlflow_right_after_up_is_whole(mlkit_home):
    # A warm-up that imported MLflow in a kernel thread raced this import (_DeadlockError,
    # a half-imported mlflow); the warm-up now imports nothing in this process.
    import subprocess

    code = ("import mlkit\n"
            "mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit='1GB')\n"
            "import mlflow\n"
            "assert callable(mlflow.active_run)\n"
            "mlkit.cluster.down()\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600, env={**__import__("os").environ,
                                           "MLKIT_HOME": str(mlkit_home)})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_mlkit_warm_0_turns_it_off(mlkit_home, monkeypatch):
    monkeypatch.setenv("MLKIT_WARM", "0")
    c = mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit="1GB", replace=True)
    try:
        # a task runs after anything queued on the worker before it
        assert c.client.submit(_imported, "optuna", pure=False).result() is False
        assert not (mlkit_home / "mlflow" / "mlflow.db").exists()
    finally:
        mlkit.cluster.down()
