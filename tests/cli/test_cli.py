"""The `mlkit` command through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import mlkit
from mlkit.cli import cli


def test_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output and "info" in result.output


def test_info_reports_gpus_and_home(mlkit_home):
    result = CliRunner().invoke(cli, ["info", "--json"])
    assert result.exit_code == 0
    d = json.loads(result.output)
    assert d["home"] == str(mlkit_home)
    assert d["gpus"] == [] and "NVML" in d["gpu_reason"]


def test_info_text():
    result = CliRunner().invoke(cli, ["info"])
    assert result.exit_code == 0 and "GPUs:" in result.output and "packages:" in result.output


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["nope"])
    assert result.exit_code == 2 and "No such command 'nope'" in result.output


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the whole loop in a subprocess: a ceiling for a hang, not a speed test
def test_demo_runs_the_whole_loop_and_stops_everything(tmp_path):
    mlkit.cluster.down()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkit.cli",
            "demo",
            "--rows",
            "20000",
            "--workers",
            "2",
            "--trials",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = out.stdout.split("summary", 1)[1]
    for step in ("cluster", "data", "validate", "tune", "train", "register", "serve", "drift"):
        assert f"  {step} " in summary
    assert "2 trials on the workers" in summary
    assert "alias champion" in summary and "served at http://127.0.0.1:" in summary
    assert "DRIFT: 1 of 12 features drifted (f0)" in summary
    assert "scoring server and cluster stopped" in summary


def test_demo_rejects_bad_sizes():
    result = CliRunner().invoke(cli, ["demo", "--rows", "5"])
    assert result.exit_code == 2 and "--rows" in result.output
