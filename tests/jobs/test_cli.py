"""``mlkit run`` / ``mlkit jobs list`` as cron or CI calls them: a subprocess, no TTY, no stdin.

Every case shares one mlkit home (the MLflow store is created once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest


@pytest.fixture(scope="module")
def mlkit_cli(job_home):
    exe = str(Path(sys.executable).parent / "mlkit")
    env = {**os.environ, "MLKIT_HOME": str(job_home)}
    env.pop("MLFLOW_TRACKING_URI", None)

    def call(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [exe, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, cwd=str(job_home),
        )

    return call


@pytest.fixture(scope="module")
def calls(mlkit_cli, notebooks, job_home):
    """The CLI runs shared by the assertions below, in order. Two go through a real subprocess
    (what cron sees: stdout, stderr, exit code); the rest run in-process with click's runner,
    because every subprocess pays the imports again on this shared machine."""
    from click.testing import CliRunner

    from mlkit.cli import cli

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), env={"MLKIT_HOME": str(job_home)})

    params = job_home / "params.yaml"
    params.write_text("factor: 0.5\nlabel: nightly\n")
    out = {}
    out["ok"] = mlkit_cli(
        "run", str(notebooks / "simple1.ipynb"), "-p", "x", "4", "-f", str(params),
        "--output", str(job_home / "ok.ipynb"), "--experiment", "cron",
    )
    out["raise"] = mlkit_cli("run", str(notebooks / "raise1.ipynb"))
    out["timeout"] = invoke(
        "run", str(notebooks / "timeout1.ipynb"), "-p", "seconds", "600", "--timeout", "8"
    )
    out["sysexit"] = invoke("run", str(notebooks / "sysexit1.ipynb"), "--json")
    out["list"] = invoke("jobs", "list", "--last", "3")
    out["list_json"] = invoke("jobs", "list", "--json")
    return out


def test_success_exits_0_and_prints_the_result(calls, job_home):
    r = calls["ok"]
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # nothing from the kernel, papermill or MLflow
    first, second = r.stdout.strip().splitlines()
    assert first.startswith("mlkit run: OK in ") and str(job_home / "ok.ipynb") in first
    assert "(experiment cron)" in first
    assert json.loads(second.removeprefix("recorded: ")) == {
        "result": 8.0, "label": "nightly", "doubled": [8.0, 16.0],
    }
    assert nbformat.read(job_home / "ok.ipynb", as_version=4).metadata["mlkit"]["status"] == "ok"


def test_failure_exits_1_with_one_line_naming_the_cell_and_error(calls):
    r = calls["raise"]
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "FAILED at cell 2 (In [3]): ZeroDivisionError: division by zero" in lines[0]
    output = lines[0].split("output: ")[1].split(";")[0]
    nb = nbformat.read(output, as_version=4)
    assert nb.metadata["mlkit"]["error"]["ename"] == "ZeroDivisionError"
    assert r.stdout == ""


def test_job_timeout_exits_4(calls):
    r = calls["timeout"]
    assert r.exit_code == 4
    (line,) = r.stderr.strip().splitlines()
    assert "TIMED OUT at cell 3" in line and "timeout of 8 s" in line


def test_sys_exit_exits_3_and_json_output_is_machine_readable(calls):
    r = calls["sysexit"]
    assert r.exit_code == 3
    data = json.loads(r.stdout)
    assert data["status"] == "stopped" and data["exit_code"] == 3
    assert data["cell_index"] == 2 and data["ename"] == "SystemExit"
    assert "STOPPED EARLY" in r.stderr


def test_jobs_list_shows_recent_runs_newest_first(calls):
    r = calls["list"]
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["started", "kind", "notebook", "status"]
    assert len(lines) == 4  # header + --last 3
    assert "sysexit1.ipynb" in lines[1] and "stopped" in lines[1]
    records = json.loads(calls["list_json"].stdout)
    assert [(r["notebook"], r["status"]) for r in records] == [
        ("sysexit1.ipynb", "stopped"), ("timeout1.ipynb", "timeout"),
        ("raise1.ipynb", "failed"), ("simple1.ipynb", "ok"),
    ]
    assert {r["experiment"] for r in records} == {"cron", "mlkit-jobs"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["-p", "class", "1"], "keyword"),
        (["-p", "nope", "1"], "unknown parameter 'nope'"),
        (["--grid", "x"], "NAME=V1,V2"),
        (["--timeout", "0"], "positive number"),
        (["--workers", "2"], "only apply to a sweep"),
    ],
)
def test_bad_usage_exits_2_before_anything_runs(args, fragment, notebooks, tmp_path):
    from click.testing import CliRunner

    from mlkit.cli import cli

    result = CliRunner().invoke(cli, ["run", str(notebooks / "simple1.ipynb"), *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert not (Path(os.environ["MLKIT_HOME"]) / "mlflow").exists()


def test_missing_notebook_exits_2():
    from click.testing import CliRunner

    from mlkit.cli import cli

    result = CliRunner().invoke(cli, ["run", "no/such.ipynb"])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_help_documents_the_exit_codes():
    from click.testing import CliRunner

    from mlkit.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert "Exit codes: 0 ok; 1" in text and "3 the notebook stopped early" in text
