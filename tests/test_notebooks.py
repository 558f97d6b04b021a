"""The end-to-end notebook also runs unattended as a parameterised job (`mlkit run`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_end_to_end_notebook_runs_as_a_job_with_other_parameters(tmp_path):
    out_nb = tmp_path / "e2e-out.ipynb"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkit.cli",
            "run",
            str(ROOT / "notebooks" / "end_to_end.ipynb"),
            "-p",
            "rows",
            "100000",
            "-p",
            "trials",
            "2",
            "--output",
            str(out_nb),
            "--json",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    nb = json.loads(out_nb.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "rows = 100000" in "".join(injected[0]["source"])
    text = json.dumps(nb)
    assert "4 trials complete" not in text and "2 trials complete" in text
    assert "drift: True in ['f0']" in text
