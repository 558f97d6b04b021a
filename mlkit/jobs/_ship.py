"""Sweep jobs on workers that do not share the client's disk: ship the notebook, bring it back.

On such a cluster (the connect preflight says so) the notebook exists only on the client and
the executed notebook would stay on the worker. So the task carries the notebook's bytes, runs
it in a scratch folder of the worker, and returns the executed notebook's bytes with its
outcome; the client writes them where the job's output belongs on its own disk. Recorded values
travel in the outcome already.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlkit._fs import atomic_write

__all__ = ["run_shipped", "land"]


def run_shipped(spec: Any, notebook: bytes, cancel_event: str | None = None
                ) -> tuple[Any, bytes | None]:
    """The Dask task: run ``notebook`` (bytes) here as ``spec`` says; return (outcome, output)."""
    from mlkit.jobs._sweep import run_on_worker

    scratch = tempfile.mkdtemp(prefix="mlkit-shipped-")
    try:
        local_nb = os.path.join(scratch, Path(spec.notebook).name)
        with open(local_nb, "wb") as f:
            f.write(notebook)
        local = dataclasses.replace(
            spec, notebook=local_nb, output=os.path.join(scratch, "out", Path(spec.output).name),
            cwd=scratch,
        )
        outcome = run_on_worker(local, cancel_event)
        data = None
        if outcome.output and os.path.exists(outcome.output):
            with open(outcome.output, "rb") as f:
                data = f.read()
        return outcome, data
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def land(spec: Any, shipped: tuple[Any, bytes | None]) -> Any:
    """On the client: write the executed notebook where ``spec.output`` says; the outcome."""
    outcome, data = shipped
    if data is None:
        outcome.output = None
        return outcome
    target = Path(spec.output)
    if outcome.output and outcome.output.endswith(".partial.ipynb"):
        target = target.with_name(Path(outcome.output).name)  # it did not finish: say so
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data)
    outcome.output = str(target)
    return outcome
