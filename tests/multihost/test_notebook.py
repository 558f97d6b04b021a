"""notebooks/end_to_end.ipynb, unchanged but for one parameter, on the remote cluster."""

from __future__ import annotations

import json
import sys

import pytest
from _hosts import REPO


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_end_to_end_notebook_runs_against_the_remote_scheduler(net, scheduler, session):
    client = net["client"]
    out = "/tmp/work/e2e-out.ipynb"
    proc = client.run(
        [sys.executable, "-m", "papermill", str(REPO / "notebooks" / "end_to_end.ipynb"), out,
         "-k", "python3", "-p", "scheduler_address", scheduler, "-p", "rows", "8000",
         "--no-progress-bar"],
        env={"MLKIT_STORE": "s3://mlkit/e2e"}, timeout=900, check=False)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-6000:])
    nb = json.loads(client.read_file(out))
    text = "\n".join(
        o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
        for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
    )
    assert "trials complete; best AUC above 0.7: True" in text, text[-3000:]
    assert "predictions over HTTP; all in [0, 1]: True" in text
    # It ran on the remote workers, with its data in the shared store, not on the client.
    listing = net["scheduler"].python(
        "import s3fs; print(s3fs.S3FileSystem().ls('mlkit/e2e/data'))").stdout
    assert "part." in listing, listing
    # No cluster of its own was started on the client host (`%mlscale up` joined the remote one).
    scratch = client.run(["sh", "-c", "ls -d /tmp/mlkit-e2e-*/dask-scratch"], check=False)
    assert scratch.returncode != 0, scratch.stdout
