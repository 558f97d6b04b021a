"""`make gpu-check` without a GPU says so and exits 0; with one it prints the figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_without_gpu_exits_cleanly_and_says_why():
    import mlkit

    if mlkit.cluster.gpus():
        pytest.skip("this machine has a GPU: test_gpu_check_on_gpu covers it")
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no NVIDIA GPU visible" in out.stdout
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["gpu"] is False and figures["reason"]


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_check_on_gpu():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", "200000", "--rounds", "10"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["gpu"] is True and figures["ddp_backend"] == "nccl"
    assert figures["xgb_gpu_s"] > 0 and figures["xgb_cpu_s"] > 0
