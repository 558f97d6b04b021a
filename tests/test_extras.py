"""Each extra alone: its features import, and another extra's feature names the extra it needs.

Installing one extra alone is simulated in a subprocess: a ``sys.meta_path`` finder refuses the
top-level modules that the extra's dependency closure (read from the installed metadata, so
it follows pyproject.toml) does not install. A feature module importing something its extra
does not bring fails here, and so does an engine imported directly instead of through
``mlkit._imports.require`` (the message would not name the extra).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from mlkit._imports import _EXTRA_FOR

# What each extra promises to make work: modules that import with that extra alone.
FEATURES = {
    "dask": ["mlkit.cluster._local"],
    "data": [
        "mlkit.data._prep.base", "mlkit.data._prep.compose", "mlkit.data._prep.impute",
        "mlkit.data._prep.encode", "mlkit.data._prep.scale", "mlkit.data._storage",
        "mlkit.data._validate", "mlkit.data._profile", "mlkit.data._split",
        "mlkit.data._fingerprint", "mlkit.monitor._stats", "mlkit.monitor._drift",
    ],
    "xgboost": ["mlkit.train._xgboost", "mlkit.train._xgb_worker"],
    "torch": ["mlkit.train._torch", "mlkit.train._torch_worker"],
    "optuna": ["mlkit.tune._tune", "mlkit.tune._task", "mlkit.tune._study"],
    "mlflow": ["mlkit.track._writer", "mlkit.track._defaults", "mlkit.track._registry"],
    "papermill": ["mlkit.jobs._execute", "mlkit.jobs._watch"],
    "widgets": ["mlkit.widgets.cluster"],
}

# (extra installed alone, a module of another feature, the extra its error must name)
MISSING = [
    ("xgboost", "mlkit.tune._tune", "optuna"),
    ("optuna", "mlkit.train._xgboost", "xgboost"),
    ("optuna", "mlkit.train._torch", "torch"),
    ("torch", "mlkit.train._xgboost", "xgboost"),
    ("dask", "mlkit.data._prep.base", "data"),
    ("xgboost", "mlkit.data._prep.compose", "data"),
    ("mlflow", "mlkit.train._xgb_worker", "xgboost"),
    ("widgets", "mlkit.data._fingerprint", "dask"),
]

_NAME = re.compile(r"[-_.]+")


def _norm(name: str) -> str:
    return _NAME.sub("-", name).lower()


def _closure(extra: str) -> set[str]:
    """Normalised names of the distributions ``pip install "mlkit[extra]"`` installs."""
    seen: set[str] = set()
    todo = [("mlkit", frozenset({extra}))]
    done: set[tuple[str, frozenset]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. a platform-specific dependency not installed here
        seen.add(_norm(name))
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return seen


def _blocked(extra: str) -> list[str]:
    """The engines' top-level modules that ``mlkit[extra]`` does not install."""
    closure = _closure(extra)
    providers = metadata.packages_distributions()
    return sorted(
        top for top in _EXTRA_FOR
        if not ({_norm(d) for d in providers.get(top, [])} & closure)
    )


PROBE = r"""
import importlib, importlib.abc, json, sys

BLOCKED = set({blocked!r})

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
out = {{}}
for module in {modules!r}:
    try:
        importlib.import_module(module)
        out[module] = None
    except ImportError as exc:
        out[module] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


def _probe(extra: str, modules: list[str]) -> dict:
    code = PROBE.format(blocked=_blocked(extra), modules=modules)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("extra", sorted(FEATURES))
def test_each_extra_alone_imports_its_features(extra):
    assert _blocked(extra), f"mlkit[{extra}] seems to install every engine: nothing simulated"
    result = _probe(extra, FEATURES[extra])
    failed = {m: r for m, r in result.items() if r is not None}
    assert failed == {}, f"with only mlkit[{extra}] installed"


@pytest.mark.parametrize(("extra", "module", "needed"), MISSING)
def test_a_missing_extra_is_named_in_the_error(extra, module, needed):
    assert needed != extra
    kind, message = _probe(extra, [module])[module]
    assert kind == "MissingDependencyError"
    assert f'pip install "mlkit[{needed}]"' in message


def test_the_closure_reads_the_installed_metadata():
    """The simulation itself: mlkit[xgboost] brings xgboost and dask, not optuna or torch."""
    blocked = _blocked("xgboost")
    assert {"optuna", "torch", "papermill"} <= set(blocked)
    assert not {"xgboost", "dask", "distributed", "pandas"} & set(blocked)
