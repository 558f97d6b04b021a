"""How a job outcome is written to MLflow (shared by ``run`` and ``sweep``).

Only the client process writes to the tracking store (sweep workers return outcomes), which keeps
the default SQLite store single-writer. Runs are created with :func:`mlkit.track.run`, so lineage
tags come from mlkit.track; everything else goes through mlkit's one MLflow writer
(:class:`mlkit.track._writer.RunWriter`: MLflow's limits, one ``log_batch``) and a few artifacts.
"""

from __future__ import annotations

from typing import Any

from mlkit.jobs._execute import JobOutcome
from mlkit.jobs._params import is_number
from mlkit.track._writer import RunWriter

__all__ = [
    "DEFAULT_EXPERIMENT",
    "JOB_TAG",
    "MLFLOW_STATUS",
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
    writer = RunWriter(run_id, client=client)
    writer.tag("mlkit.job.status", outcome.status)
    if outcome.output:
        writer.tag("mlkit.job.output", outcome.output)
    if not outcome.ok:
        # Long values are cut to MLflow's tag limit by the writer (the full text is in the log).
        writer.tags({
            "mlkit.job.error": outcome.summary(),
            "mlkit.job.ename": outcome.ename,
            "mlkit.job.evalue": outcome.evalue,
        })
        if outcome.cell_index is not None:
            writer.tag("mlkit.job.cell_index", outcome.cell_index)
        if outcome.exec_count is not None:
            writer.tag("mlkit.job.exec_count", outcome.exec_count)
    writer.metric("job_duration_s", round(outcome.duration_s, 3))
    for name, value in outcome.recorded.items():
        if is_number(value):
            writer.metric(name, float(value))
        elif value is None or isinstance(value, (str, bool)):
            writer.param(f"recorded.{name}" if name in parameters else name, value)
    writer.flush()
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
