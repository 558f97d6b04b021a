"""`import mlkit.track` and the tracking switch stay cheap: MLflow loads on first real use."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["dask", "distributed", "torch", "xgboost", "optuna", "mlflow", "papermill", "pandas"]


def test_track_package_and_switch_import_no_engine():
    code = (
        "import json, sys, mlkit.track as t\n"
        "names = sorted(t.__all__)\n"
        "t.disable(); t.enabled(); str(t.status())\n"
        f"print(json.dumps([names, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == []
    for name in ("configure", "run", "lineage_tags", "log_dataset", "register", "promote",
                 "models", "enable", "disable", "enabled"):
        assert name in names
