"""``import mlkit.scaling`` and the CLI's ``--help`` load no engine (the report loads them)."""

import json
import subprocess
import sys

HEAVY = ["dask", "distributed", "xgboost", "optuna", "mlflow", "pandas", "matplotlib"]


def test_importing_the_scaling_package_and_its_cli_is_cheap():
    code = ("import json, sys, mlkit, mlkit.scaling, mlkit.scaling._cli\n"
            "assert mlkit.scaling.report\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
