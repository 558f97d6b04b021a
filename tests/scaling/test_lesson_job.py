"""Lesson 14 also runs unattended as a papermill job (``mlkit.jobs.run``) with ``scale`` set."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import mlkit

ROOT = Path(__file__).resolve().parents[2]
LESSON = ROOT / "tutorials" / "14_scaling_report.ipynb"


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a hang ceiling: a loaded 2-core machine is many times slower
def test_the_scaling_lesson_runs_as_a_papermill_job(tmp_path, monkeypatch):
    # the lesson's scoring server is started by name (mlflow, uvicorn): the venv's bin first
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    mlkit.cluster.down()  # the lesson starts (and stops) its own cluster
    out = tmp_path / "lesson-14-out.ipynb"
    result = mlkit.jobs.run(LESSON, parameters={"scale": 1}, output=out, cwd=tmp_path,
                            progress=False, timeout=1500)
    assert result.status == "ok", (result.ename, result.evalue)
    nb = json.loads(out.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "scale = 1" in "".join(injected[0]["source"])
    text = json.dumps(nb)
    assert "efficiency = measured / ideal for all 8 throughput rows" in text
    assert "4 inline images | 0 outside links" in text
    assert "MLflow run scaling-report FINISHED" in text
    assert "image/png" in text  # the plots are inline in the executed notebook
