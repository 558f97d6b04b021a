"""What a cell leaves in the notebook file, seen from a real kernel's messages."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

WIDGET = "application/vnd.jupyter.widget-view+json"
DOWNLOAD = (
    "import mlflow, mlkit\n"
    "mlkit.track.configure('saved-outputs')\n"
    "with mlflow.start_run() as r:\n"
    "    mlflow.log_dict({'a': 1}, 'd.json')\n"
    "p = mlflow.artifacts.download_artifacts(run_id=r.info.run_id, artifact_path='d.json')\n"
    "print(open(p).read())"
)


def test_mlflow_artifact_bars_are_off_in_a_notebook_unless_the_user_turns_them_on(bare_kernel):
    k = bare_kernel
    k.ok("%load_ext mlkit")
    r = k.run(DOWNLOAD)
    assert r.status == "ok" and '"a": 1' in r.stdout, r
    # a tqdm widget here would be saved as "Downloading artifacts: 0%" / "Error displaying widget"
    assert not [o for o in r.outputs if WIDGET in o], r.outputs
    # the user's own choice wins (and shows that MLflow would draw the widget here)
    k.ok("import os; os.environ['MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR'] = 'true'")
    r = k.run(DOWNLOAD)
    assert r.status == "ok" and [o for o in r.outputs if WIDGET in o], r.outputs
