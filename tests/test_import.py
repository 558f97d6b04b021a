"""`import mlkit` and `%load_ext mlkit` must stay cheap: no engine is imported."""

import json
import subprocess
import sys

HEAVY = [
    "dask",
    "distributed",
    "torch",
    "xgboost",
    "optuna",
    "mlflow",
    "papermill",
    "ipywidgets",
    "pandas",
]

PROBE = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_mlkit_loads_no_engine():
    assert _loaded("import mlkit") == []


def test_load_ext_loads_no_engine():
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'mlkit')\n"
        "assert 'mlscale' in ip.magics_manager.magics['line']"
    )
    assert _loaded(code) == []


def test_cluster_module_and_cli_help_are_cheap():
    assert _loaded("import mlkit.cluster, mlkit.cli, mlkit.config, mlkit.exceptions") == []


def test_submodules_load_on_attribute_access():
    code = "import mlkit\nassert mlkit.cluster.up is not None"
    assert _loaded(code) == []  # the cluster API itself imports distributed only when used


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    import mlkit

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mlkit.nope  # noqa: B018
