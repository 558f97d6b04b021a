"""``mlkit scaling-report`` in a real subprocess: it writes the report, refuses bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _mlkit(args, tmp_path, home):
    env = {**os.environ, "MLKIT_HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "mlkit.cli", "scaling-report", *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1700)


@pytest.mark.timeout(1800)  # a hang ceiling: a loaded 2-core machine is many times slower
def test_the_cli_writes_the_report(tmp_path, mlkit_home):
    out = tmp_path / "report"
    proc = _mlkit(["--workers", "1", "--out", str(out), "--rows", "2000", "--rounds", "3",
                   "--trials", "2", "--requests", "3", "--clients", "1,2",
                   "--train-fractions", "1", "--no-progress"], tmp_path, mlkit_home)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    html = (out / "scaling_report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "<td>train</td>" in html
    assert f"report: {out / 'scaling_report.html'}" in proc.stdout
    assert "MLflow run: " in proc.stdout
    for measure in ("preprocess", "train", "tune", "batch_score", "latency_p50", "accuracy"):
        assert measure in proc.stdout


def test_the_cli_names_a_bad_workers_value(tmp_path, mlkit_home):
    proc = _mlkit(["--workers", "1,x", "--out", str(tmp_path / "r")], tmp_path, mlkit_home)
    assert proc.returncode == 2
    assert "workers='1,x'" in proc.stderr and "not a whole number" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists() and not mlkit_home.exists()
