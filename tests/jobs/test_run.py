"""``mlkit.jobs.run`` with real kernels and a real MLflow store.

Each behaviour-named notebook is executed once (module fixture) and the assertions share it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import nbformat
import pytest

import mlkit
from mlkit.exceptions import JobError, JobExecutionError, JobStoppedError, JobTimeoutError
from tests._stop import press_stop
from tests._wait import wait_for

ROUND_TRIP = dict(
    a_none=None,
    a_bool=True,
    a_int=2**70,
    a_float=1e-300,
    a_str="quote \" single ' back \\ nl \n tab \t nul \x00 é 漢字 🚀 {x} %s",
    a_list=[1, 2.5, None, False, "x", [], {}],
    a_dict={"nested": {"k": [1, {"deep": None}]}, "ünï\"'": -0.5, "": "empty key"},
)


def _capture(call):
    try:
        return call(), None
    except JobExecutionError as exc:
        return exc.result, exc


@pytest.fixture(scope="module")
def runs(job_home, notebooks):
    """One execution per behaviour; values are (JobResult, exception or None)."""
    params_file = job_home / "params.yaml"
    params_file.write_text("factor: 2.5\nlabel: from-file\n")
    nb = notebooks
    out = {}
    out["ok"] = _capture(lambda: mlkit.jobs.run(
        nb / "simple1.ipynb", {"x": 3, "label": "explicit"}, params_file=params_file,
        output=job_home / "out" / "simple.ipynb", progress=False))
    out["params"] = _capture(lambda: mlkit.jobs.run(
        nb / "params1.ipynb", ROUND_TRIP, progress=False))
    out["nonfinite"] = _capture(lambda: mlkit.jobs.run(
        nb / "params1.ipynb", {"a_float": math.inf, "a_int": math.nan, "a_list": [-math.inf]},
        progress=False))
    out["raise"] = _capture(lambda: mlkit.jobs.run(nb / "raise1.ipynb", {"x": 5}, progress=False))
    out["sysexit1"] = _capture(lambda: mlkit.jobs.run(nb / "sysexit1.ipynb", progress=False))
    out["sysexit0"] = _capture(lambda: mlkit.jobs.run(
        nb / "sysexit0.ipynb", progress=False, raise_on_error=False))
    out["death"] = _capture(lambda: mlkit.jobs.run(nb / "kernel_death1.ipynb", progress=False))
    out["cell_timeout"] = _capture(lambda: mlkit.jobs.run(
        nb / "timeout1.ipynb", {"seconds": 600}, cell_timeout=3, progress=False))
    return out


def _run(client, result):
    return client.get_run(result.run_id)


def _cells(path):
    nb = nbformat.read(path, as_version=4)
    tag = "papermill-error-cell-tag"
    return nb, [c for c in nb.cells if tag not in c.metadata.get("tags", [])]


def test_ok_run_records_params_values_status_and_the_notebook(runs, job_home, mlflow_client):
    result, exc = runs["ok"]
    assert exc is None and result.ok and result.exit_code == 0
    assert result.parameters == {"factor": 2.5, "label": "explicit", "x": 3}
    assert result.recorded == {"result": 22.5, "label": "explicit", "doubled": [22.5, 45.0]}
    assert result.output == str(job_home / "out" / "simple.ipynb")
    nb, cells = _cells(result.output)
    assert nb.metadata["mlkit"]["status"] == "ok"
    assert nb.metadata["mlkit"]["recorded"]["result"] == 22.5
    injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "x = 3" in injected[0].source
    assert not list((job_home / "out").glob(".*partial*")), "temporary output left behind"

    client = mlflow_client(job_home)
    run = _run(client, result)
    assert run.info.status == "FINISHED"
    assert run.data.params["x"] == "3" and run.data.params["factor"] == "2.5"
    assert run.data.params["label"] == "explicit"
    assert run.data.params["recorded.label"] == "explicit"  # recorded name = a parameter name
    assert run.data.metrics["result"] == 22.5
    assert run.data.metrics["job_duration_s"] > 0
    tags = run.data.tags
    assert tags["mlkit.job"] == "run" and tags["mlkit.job.status"] == "ok"
    assert tags["mlkit.job.notebook"].endswith("simple1.ipynb")
    assert client.get_experiment(run.info.experiment_id).name == "mlkit-jobs"
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"simple.ipynb", "parameters.json", "record.json"} <= artifacts
    local = client.download_artifacts(result.run_id, "parameters.json", str(job_home / "dl"))
    assert json.loads(Path(local).read_text()) == result.parameters


def test_values_of_every_json_type_round_trip_exactly(runs):
    result, exc = runs["params"]
    assert exc is None
    for name, value in ROUND_TRIP.items():
        assert result.recorded[name] == value, name
        assert result.recorded["types"][name] == type(value).__name__


def test_non_finite_floats_round_trip(runs):
    result, _ = runs["nonfinite"]
    assert result.recorded["a_float"] == math.inf
    assert math.isnan(result.recorded["a_int"])
    assert result.recorded["a_list"] == [-math.inf]


def test_raising_cell_fails_loudly_with_the_cell_and_error(runs, job_home, mlflow_client):
    result, exc = runs["raise"]
    assert type(exc) is JobExecutionError
    # parameters cell, injected cell, `y = x + 1`, then `1 / 0` (index 3, In [4])
    assert (exc.cell_index, exc.ename, exc.evalue) == (3, "ZeroDivisionError", "division by zero")
    assert "cell 3 (In [4]): ZeroDivisionError: division by zero" in str(exc)
    assert result.status == "failed" and result.exit_code == 1
    nb, cells = _cells(exc.output_path)
    errors = [o for o in cells[3].outputs if o.output_type == "error"]
    assert errors[0].ename == "ZeroDivisionError"
    assert "before the error" in cells[2].outputs[0].text
    assert not cells[4].get("outputs") and cells[4].execution_count is None
    assert nb.metadata["mlkit"]["error"]["cell_index"] == 3
    run = _run(mlflow_client(job_home), result)
    assert run.info.status == "FAILED"
    assert run.data.tags["mlkit.job.cell_index"] == "3"
    assert run.data.tags["mlkit.job.ename"] == "ZeroDivisionError"
    assert "ZeroDivisionError" in run.data.tags["mlkit.job.error"]
    names = {a.path for a in mlflow_client(job_home).list_artifacts(result.run_id)}
    assert Path(exc.output_path).name in names


def test_sys_exit_is_an_early_stop_not_a_success(runs, job_home, mlflow_client):
    result, exc = runs["sysexit1"]
    assert type(exc) is JobStoppedError
    assert result.status == "stopped" and result.exit_code == 3
    assert (exc.cell_index, exc.ename, exc.evalue) == (2, "SystemExit", "1")
    assert result.recorded == {"reached": 1}  # the cell after sys.exit never ran
    assert _run(mlflow_client(job_home), result).info.status == "KILLED"

    # sys.exit(0), which papermill itself lets pass as a success
    zero, _ = runs["sysexit0"]
    assert zero.status == "stopped" and zero.cell_index == 1 and zero.evalue == "0"
    assert zero.recorded == {"reached": 1}
    assert _run(mlflow_client(job_home), zero).info.status == "KILLED"
    assert isinstance(zero.error(), JobStoppedError)


def test_dead_kernel_fails_the_run_at_the_cell_it_was_running(runs, job_home, mlflow_client):
    result, exc = runs["death"]
    assert type(exc) is JobExecutionError
    assert exc.cell_index == 1 and exc.ename == "DeadKernelError"
    assert "kernel died" in exc.evalue
    nb, cells = _cells(exc.output_path)
    assert [o.ename for o in cells[1].outputs if o.output_type == "error"] == ["DeadKernelError"]
    assert nb.metadata["mlkit"]["status"] == "failed"
    assert _run(mlflow_client(job_home), result).info.status == "FAILED"


def test_cell_timeout_interrupts_the_cell_and_fails_the_run(runs, job_home, mlflow_client):
    result, exc = runs["cell_timeout"]
    assert type(exc) is JobTimeoutError
    assert result.status == "timeout" and result.exit_code == 4
    assert exc.cell_index == 3 and "cell timeout of 3 s" in exc.evalue
    assert result.duration_s < 300  # the 600 s sleep was cut short
    nb, cells = _cells(exc.output_path)
    enames = [o.ename for o in cells[3].outputs if o.output_type == "error"]
    assert "KeyboardInterrupt" in enames and "JobTimeout" in enames  # where it was, and why
    assert not cells[4].get("outputs")
    run = _run(mlflow_client(job_home), result)
    assert run.info.status == "FAILED" and run.data.tags["mlkit.job.status"] == "timeout"


def test_no_run_is_left_running_and_jobs_list_reports_each_status(
    runs, job_home, mlflow_client, monkeypatch
):
    client = mlflow_client(job_home)
    exp = client.get_experiment_by_name("mlkit-jobs")
    all_runs = client.search_runs([exp.experiment_id], max_results=100)
    assert len(all_runs) == len(runs)
    assert {r.info.status for r in all_runs} <= {"FINISHED", "FAILED", "KILLED"}

    monkeypatch.setenv("MLKIT_HOME", str(job_home))
    table = mlkit.jobs.list_runs(last=50)
    assert len(table) == len(runs)
    by_id = dict(zip(table["run_id"], table["status"], strict=True))
    for result, _ in runs.values():
        assert by_id[result.run_id] == result.status
    newest = mlkit.jobs.list_runs(last=2)
    assert list(newest["run_id"]) == list(table["run_id"][:2])
    assert newest["run_id"][0] == runs["cell_timeout"][0].run_id  # newest first


def test_bad_input_fails_before_anything_is_written(notebooks, mlkit_home):
    cases = [
        (lambda: mlkit.jobs.run(notebooks / "simple1.ipynb", {"class": 1}), "keyword"),
        (lambda: mlkit.jobs.run(notebooks / "simple1.ipynb", {"y": 1}), "unknown parameter 'y'"),
        (lambda: mlkit.jobs.run(notebooks / "noparams1.ipynb", {"x": 1}), "no cell tagged"),
        (lambda: mlkit.jobs.run(notebooks / "missing.ipynb"), "does not exist"),
        (lambda: mlkit.jobs.run(notebooks / "simple1.ipynb", kernel="nope"), "not installed"),
        (lambda: mlkit.jobs.run(notebooks / "simple1.ipynb", timeout=-1), "positive number"),
        (lambda: mlkit.jobs.run(notebooks / "simple1.ipynb", cell_timeout="5"), "positive"),
    ]
    for call, fragment in cases:
        with pytest.raises(JobError, match=fragment):
            call()
    assert not (mlkit_home / "mlflow").exists() and not (mlkit_home / "jobs").exists()


def test_not_a_notebook_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(JobError, match="not a readable notebook"):
        mlkit.jobs.run(bad)


def _wait_for_kernel(timeout: float = 120) -> bool:
    import psutil

    def kernel_running() -> bool:
        for p in psutil.Process().children(recursive=True):
            try:
                if any("ipykernel" in part for part in p.cmdline()):
                    return True
            except psutil.NoSuchProcess:
                pass
        return False

    return wait_for(kernel_running, timeout=timeout, what="a kernel process")


@pytest.mark.slow
def test_interrupt_stops_the_kernel_and_marks_the_run_killed(
    notebooks, mlkit_home, mlflow_client, no_kernel_left
):

    def interrupt_when_running():
        if _wait_for_kernel():
            time.sleep(2.0)
            press_stop()

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    out = mlkit_home / "interrupted.ipynb"
    with pytest.raises(KeyboardInterrupt):
        mlkit.jobs.run(notebooks / "timeout1.ipynb", {"seconds": 600}, output=out, progress=False)
    client = mlflow_client(mlkit_home)
    (run,) = client.search_runs([client.get_experiment_by_name("mlkit-jobs").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags["mlkit.job.status"] == "cancelled"
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["mlkit"]["status"] == "cancelled"
