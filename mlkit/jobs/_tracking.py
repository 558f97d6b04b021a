"""How a job outcome is written to MLflow (shared by ``run`` and ``sweep``).

Only the client process writes to the tracking store (sweep workers return outcomes), which keeps
the default SQLite store single-writer. Runs are created with :func:`mlkit.track.run`, so lineage
tags come from mlkit.track; everything else goes through one ``MlflowClient.log_batch`` call and
a few artifacts.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mlkit.jobs._execute import JobOutcome
from mlkit.jobs._params import is_number

__all__ = [
    "DEFAULT_EXPERIMENT",
    "JOB_TAG",
    "MLFLOW_STATUS",
    "param_text",
    "job_tags",
    "log_outcome",
    "set_final_status",
]

DEFAULT_EXPERIMENT = "mlkit-jobs"

#: Tag on every job run: "run" (one notebook), "sweep" (the parent) or "sweep-job" (a child).
JOB_TAG = "mlkit.job"

MLFLOW_STATUS = {
    "ok": "FINISHED",
    "failed": "FAILED",
    "timeout": "FAILED",
    "stopped": "KILLED",  # ended before its last cell on purpose: neither success nor a crash
    "cancelled": "KILLED",
}

_PARAM_MAX = 6000  # MLflow's limit on a param value
_TAG_MAX = 5000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def param_text(value: Any) -> str:
    """A parameter value as MLflow shows it (the exact value is in ``parameters.json``)."""
    text = value if isinstance(value, str) else (
        json.dumps(value, allow_nan=True) if isinstance(value, (list, dict)) else str(value)
    )
    return _clip(text, _PARAM_MAX)


def job_tags(kind: str, notebook: str, output: str | None, kernel: str) -> dict[str, str]:
    """Tags set when a job run starts."""
    tags = {
        JOB_TAG: kind,
        "mlkit.job.notebook": notebook,
        "mlkit.job.kernel": kernel,
        "mlkit.job.status": "running",
        "mlflow.source.name": notebook,
        "mlflow.source.type": "NOTEBOOK",
    }
    if output:
        tags["mlkit.job.output"] = output
    return tags


def log_outcome(
    client: Any, run_id: str, outcome: JobOutcome, parameters: dict[str, Any]
) -> None:
    """Write status, error fields, duration, recorded values and artifacts of one job."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    tags = {"mlkit.job.status": outcome.status}
    if outcome.output:
        tags["mlkit.job.output"] = outcome.output
    if not outcome.ok:
        tags["mlkit.job.error"] = _clip(outcome.summary(), _TAG_MAX)
        tags["mlkit.job.ename"] = _clip(outcome.ename, 250)
        tags["mlkit.job.evalue"] = _clip(outcome.evalue, _TAG_MAX)
        if outcome.cell_index is not None:
            tags["mlkit.job.cell_index"] = str(outcome.cell_index)
        if outcome.exec_count is not None:
            tags["mlkit.job.exec_count"] = str(outcome.exec_count)
    metrics = [Metric("job_duration_s", round(outcome.duration_s, 3), now, 0)]
    params = []
    for name, value in outcome.recorded.items():
        if is_number(value):
            metrics.append(Metric(name, float(value), now, 0))
        elif value is None or isinstance(value, (str, bool)):
            key = f"recorded.{name}" if name in parameters else name
            params.append(Param(key, param_text(value)))
    client.log_batch(
        run_id,
        metrics=metrics,
        params=params,
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    client.log_dict(run_id, parameters, "parameters.json")
    if outcome.recorded:
        client.log_dict(run_id, outcome.recorded, "record.json")
    if outcome.output:
        client.log_artifact(run_id, outcome.output)
    if outcome.kernel_log and not outcome.ok:
        client.log_text(run_id, outcome.kernel_log, "kernel.log")


def set_final_status(client: Any, run_id: str, status: str) -> None:
    """Give a run that did not succeed its final MLflow status (never left RUNNING)."""
    mlflow_status = MLFLOW_STATUS[status]
    if mlflow_status != "FINISHED":
        client.set_terminated(run_id, status=mlflow_status)
