"""``mlkit.jobs.sweep`` on a real 2-worker LocalCluster: one kernel per job inside Dask tasks."""

from __future__ import annotations

import math
import threading
import time

import nbformat
import pytest

import mlkit
from mlkit.exceptions import JobError
from tests._stop import press_stop
from tests._wait import wait_for, wait_until_false

# The shape tests/conftest.py's `cluster` fixture uses, so the running cluster is reused.
CLUSTER_SPEC = {"workers": 2, "threads_per_worker": 1, "memory_limit": "2GB"}


@pytest.fixture(scope="module")
def swept(job_home, notebooks, tmp_path_factory):
    """Four jobs over two workers; the job with x=3 fails on purpose. The first two jobs wait
    for each other at a barrier, so a sweep that ran them one after the other would hang there
    (and fail) instead of passing on a quiet machine by luck."""
    mlkit.cluster.up(**CLUSTER_SPEC)
    return mlkit.jobs.sweep(
        notebooks / "sweep1.ipynb",
        {"x": [1, 2, 3, 4]},
        {"fail_on": 3, "seconds": 0.2, "barrier": str(tmp_path_factory.mktemp("barrier"))},
        progress=False,
        verbose=True,
    )


def test_summary_table_has_params_status_and_recorded_values(swept):
    assert list(swept["x"]) == [1, 2, 3, 4]
    assert list(swept["status"]) == ["ok", "ok", "failed", "ok"]
    assert list(swept.columns[:3]) == ["x", "status", "square"]
    squares = list(swept["square"])
    assert squares[:2] == [1, 4] and math.isnan(squares[2]) and squares[3] == 16
    assert "ValueError: asked to fail at x=3" in swept["error"][2]
    assert "cell 3 (In [4])" in swept["error"][2]  # parameters, injected, sleep, then this
    assert swept["error"][0] == ""
    assert swept.attrs["exit_code"] == 1


def test_a_failed_job_still_leaves_its_notebook_and_others_complete(swept):
    for i, path in enumerate(swept["output"]):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["mlkit"]["status"] == swept["status"][i]
    failed = nbformat.read(swept["output"][2], as_version=4)
    assert failed.metadata["mlkit"]["error"]["ename"] == "ValueError"


def test_jobs_ran_in_parallel_on_both_workers(swept):
    assert swept["worker_pid"].nunique() == 2  # the kernel's parent is the Dask worker process
    ok = swept[swept["status"] == "ok"]
    spans = list(zip(ok["start"], ok["end"], strict=True))
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert overlap >= 2


def test_parent_run_with_one_child_per_job(swept, job_home, mlflow_client):
    client = mlflow_client(job_home)
    parent = client.get_run(swept.attrs["run_id"])
    assert parent.info.status == "FAILED"  # one job failed
    assert parent.data.tags["mlkit.job"] == "sweep"
    assert parent.data.metrics["jobs"] == 4 and parent.data.metrics["jobs_ok"] == 3
    assert parent.data.params["grid.x"] == "[1, 2, 3, 4]"
    assert parent.data.params["fail_on"] == "3"
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    assert len(children) == 4
    by_x = {c.data.params["x"]: c for c in children}
    assert by_x["3"].info.status == "FAILED"
    assert by_x["3"].data.tags["mlkit.job.ename"] == "ValueError"
    assert {by_x[k].info.status for k in ("1", "2", "4")} == {"FINISHED"}
    assert by_x["4"].data.metrics["square"] == 16
    assert set(swept["run_id"]) == {c.info.run_id for c in children}
    names = {a.path for a in client.list_artifacts(by_x["2"].info.run_id)}
    assert "001-x=2.ipynb" in names and "record.json" in names
    assert "summary.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_cluster_is_still_usable_after_a_sweep(swept):
    client = mlkit.cluster.get_client()
    assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6


def test_sweep_input_errors_come_before_any_work(notebooks, mlkit_home):
    mlkit.cluster.up(**CLUSTER_SPEC)
    nb = notebooks / "sweep1.ipynb"
    with pytest.raises(JobError, match="both a fixed parameter and swept"):
        mlkit.jobs.sweep(nb, {"x": [1, 2]}, {"x": 3})
    with pytest.raises(JobError, match="unknown parameter 'depth'"):
        mlkit.jobs.sweep(nb, {"depth": [1, 2]})
    with pytest.raises(JobError, match="must be a list"):
        mlkit.jobs.sweep(nb, {"x": 3})
    with pytest.raises(JobError, match="type set"):
        mlkit.jobs.sweep(nb, {"x": [{1, 2}]})
    assert not (mlkit_home / "jobs").exists() and not (mlkit_home / "mlflow").exists()


def _kernels_on_workers(client) -> int:
    def count() -> int:
        import psutil

        n = 0
        for p in psutil.Process().children(recursive=True):
            try:
                n += any("ipykernel" in part for part in p.cmdline()) and p.status() != "zombie"
            except psutil.NoSuchProcess:
                pass
        return n

    return sum(client.run(count).values())


@pytest.mark.slow
def test_interrupting_a_sweep_stops_its_kernels_and_keeps_the_cluster(
    notebooks, mlkit_home, mlflow_client
):

    handle = mlkit.cluster.up(**CLUSTER_SPEC)
    folder = mlkit_home / "sweep-out"

    def interrupt_when_both_run():
        wait_for(lambda: len(list(folder.glob(".*.partial.ipynb"))) >= 2, timeout=300,
                 backoff=False, what="two jobs executing")
        time.sleep(3.0)  # let both kernels get into their cells before the interrupt
        press_stop()

    threading.Thread(target=interrupt_when_both_run, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        mlkit.jobs.sweep(
            notebooks / "timeout1.ipynb", {"seconds": [600, 601, 602]}, output=folder,
            progress=False,
        )
    client = mlflow_client(mlkit_home)
    exp = client.get_experiment_by_name("mlkit-jobs")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.data.tags["mlkit.job"] == "sweep"][0]
    children = [r for r in runs if r.data.tags["mlkit.job"] == "sweep-job"]
    assert parent.info.status == "KILLED"
    assert len(children) == 2  # the queued third job never started
    assert {c.info.status for c in children} == {"KILLED"}
    assert {c.data.tags["mlkit.job.status"] for c in children} == {"cancelled"}
    wait_until_false(lambda: _kernels_on_workers(handle.client), what="no kernel on a worker")
    assert handle.client.submit(sum, [1, 2]).result(timeout=60) == 3


def test_cli_sweep_prints_the_table_and_exits_1_when_a_job_failed(notebooks, job_home):
    from click.testing import CliRunner

    from mlkit.cli import cli

    handle = mlkit.cluster.up(**CLUSTER_SPEC)
    result = CliRunner().invoke(
        cli,
        ["run", str(notebooks / "sweep1.ipynb"), "--grid", "x=2,3", "-p", "fail_on", "3",
         "-p", "seconds", "0", "--no-progress"],
        env={"MLKIT_HOME": str(job_home)},
    )
    assert result.exit_code == 1, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][:3] == ["x", "status", "square"]
    assert rows[2][:4] == ["0", "2", "ok", "4.0"] and rows[3][:3] == ["1", "3", "failed"]
    assert "sweep of 2 jobs: 1 failed, 1 ok" in result.stderr
    assert mlkit.cluster.current() is handle  # a cluster the CLI did not start is left running
