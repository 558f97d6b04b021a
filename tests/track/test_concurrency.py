"""Eight worker processes logging into one fresh SQLite store at the same moment."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest

import mlkit

WORKERS = 8
RUNS_PER_WORKER = 2
STEPS = 10


def _log_from_worker(uri: str, index: int, barrier: str) -> list[str]:
    """Runs in a worker process: wait for all workers, then open the store and log at once."""
    import mlflow

    import mlkit

    Path(barrier, f"{index}").touch()
    deadline = time.monotonic() + 300
    while len(list(Path(barrier).iterdir())) < WORKERS:  # every worker alive before anyone logs
        if time.monotonic() > deadline:
            raise TimeoutError("not all workers reached the barrier")
        time.sleep(0.05)
    run_ids = []
    for r in range(RUNS_PER_WORKER):
        # Explicit uri: a worker must not derive the store from its own (stale) environment.
        with mlkit.track.run(f"w{index}-r{r}", experiment="swarm", uri=uri,
                             params={"worker": index, "repeat": r}) as run:
            for step in range(STEPS):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metrics({"acc": 0.5 + index / 100, "repeat": r})
            mlflow.set_tag("phase", "done")
        run_ids.append(run.info.run_id)
    return run_ids


@pytest.mark.slow
def test_eight_worker_processes_log_into_one_fresh_sqlite_store(tmp_path, mlkit_home,
                                                                monkeypatch):
    monkeypatch.setenv("MLKIT_WARM", "0")  # the client must not create the store first
    uri = mlkit.track.tracking_uri()  # nothing created yet: the workers race to create the schema
    assert not (mlkit_home / "mlflow" / "mlflow.db").exists()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    handle = mlkit.cluster.up(workers=WORKERS, threads_per_worker=1, memory_limit="1GB",
                              replace=True)
    try:
        addresses = sorted(handle.client.scheduler_info(n_workers=-1)["workers"])
        assert len(addresses) == WORKERS
        futures = [
            handle.client.submit(_log_from_worker, uri, i, str(barrier), workers=[addr],
                                 allow_other_workers=False, pure=False)
            for i, addr in enumerate(addresses)
        ]
        results = handle.client.gather(futures)  # raises the first worker error, if any
    finally:
        mlkit.cluster.down()

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("swarm")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert len(runs) == WORKERS * RUNS_PER_WORKER == len({r for ids in results for r in ids})
    assert {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "loss")) == STEPS
        assert run.data.metrics["acc"] == 0.5 + int(run.data.params["worker"]) / 100
        assert run.data.tags["phase"] == "done"
        assert run.data.tags["mlkit.worker"] in addresses  # lineage: which worker ran it
    assert len({r.data.tags["mlkit.worker"] for r in runs}) == WORKERS
