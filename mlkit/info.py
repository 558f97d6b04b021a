"""``mlkit info``: versions, GPUs seen (and why not), the mlkit home and settings."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from typing import Any

import click

from mlkit import __version__, config

__all__ = ["info", "info_command"]

PACKAGES = (
    "dask",
    "distributed",
    "dask-cuda",
    "pandas",
    "pyarrow",
    "xgboost",
    "torch",
    "optuna",
    "optuna-integration",
    "mlflow",
    "papermill",
    "nbval",
    "ipywidgets",
    "jupyterlab",
)


def info() -> dict[str, Any]:
    """Describe this installation without importing any engine.

    Examples
    --------
    >>> d = info()
    >>> d["mlkit"], "gpus" in d
    ('0.1.0', True)
    """
    from mlkit.cluster import gpus

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    probe = gpus()
    s = config.settings()
    return {
        "mlkit": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "gpus": [g.to_dict() for g in probe.gpus],
        "gpu_reason": probe.reason,
        "home": str(s.home),
        "settings": {
            "host": s.host,
            "workers": s.workers,
            "threads_per_worker": s.threads_per_worker,
            "memory_limit": s.memory_limit,
            "dashboard": s.dashboard,
        },
    }


@click.command("info")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def info_command(as_json: bool) -> None:
    """Versions, GPUs seen (and why not), the mlkit home folder and settings."""
    d = info()
    if as_json:
        click.echo(json.dumps(d))
        return
    click.echo(f"mlkit {d['mlkit']} on Python {d['python']} ({d['platform']})")
    click.echo(f"home: {d['home']}")
    click.echo("settings: " + ", ".join(f"{k}={v}" for k, v in d["settings"].items()))
    if d["gpus"]:
        for g in d["gpus"]:
            click.echo(
                f"GPU {g['index']}: {g['name']} ({g['memory_total'] / 2**30:.1f} GiB, "
                f"{g['utilization']}% busy)"
            )
    else:
        click.echo(f"GPUs: none ({d['gpu_reason']})")
    click.echo("packages:")
    for name, v in d["packages"].items():
        click.echo(f"  {name:<20} {v or 'not installed'}")
