"""Packaging promises: environment.yml mirrors the `all` extra; the console script works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]

# conda-forge spells a few packages differently from PyPI.
CONDA_NAME = {
    "torch": "pytorch",
    "prometheus-client": "prometheus_client",
    "lazy-loader": "lazy_loader",
}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _expand(extra: str, extras: dict[str, list[str]]) -> set[str]:
    names: set[str] = set()
    for req in extras[extra]:
        m = re.match(r"mlkit\[(.+)\]", req)
        if m:
            for sub in m.group(1).split(","):
                names |= _expand(sub.strip(), extras)
        else:
            names.add(_name(req))
    return names


def test_environment_yml_names_the_same_packages_as_the_all_extra():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = _expand("all", meta["optional-dependencies"]) | {
        _name(d) for d in meta["dependencies"]
    }
    expected = {CONDA_NAME.get(n, n).replace("_", "-") for n in pip_names}
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert env["channels"] == ["conda-forge"]
    assert conda == expected, (
        f"missing in environment.yml: {expected - conda}; extra: {conda - expected}"
    )


def test_constraints_pin_what_the_issue_requires():
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["torch"] == "2.13.0+cpu"  # the CPU wheel on this disk, not a CUDA build
    assert pins["dask"] == pins["distributed"]
    from importlib.metadata import requires

    rdd = [
        r for r in requires("rapids-dask-dependency") or [] if r.startswith(("dask", "distributed"))
    ]
    assert any(pins["dask"] in r for r in rdd), rdd


def test_console_script_info_json():
    out = subprocess.run(
        [sys.executable, "-m", "mlkit.cli", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    d = json.loads(out.stdout)
    assert d["mlkit"] == "0.1.0" and d["packages"]["dask"]
    assert d["gpus"] or d["gpu_reason"]
