"""``mlkit jobs list``: recent job runs and how they ended, read back from MLflow."""

from __future__ import annotations

import os
import time
from typing import Any

from mlkit import _args
from mlkit.exceptions import JobArgumentError, JobError

__all__ = ["list_runs", "COLUMNS"]

COLUMNS = ["started", "kind", "notebook", "status", "duration_s", "error", "run_id", "experiment"]


def list_runs(
    last: int = 10, *, experiment: str | None = None, include_sweep_jobs: bool = False
) -> Any:
    """The most recent notebook job runs (newest first), from the MLflow tracking store.

    Parameters
    ----------
    last : int
        How many runs to show.
    experiment : str, optional
        Only this experiment (default: every experiment).
    include_sweep_jobs : bool
        Also list the child run of every sweep job (default: single runs and sweeps only).

    Returns
    -------
    pandas.DataFrame
        Columns ``started`` (local time), ``kind`` ("run" / "sweep" / "sweep-job"),
        ``notebook``, ``status`` ("ok", "failed", "timeout", "stopped", "cancelled", or
        "running" while it runs), ``duration_s``, ``error`` (one line), ``run_id``,
        ``experiment``.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.jobs.list_runs(last=5)        # doctest: +SKIP
    """
    import mlflow
    import pandas as pd
    from mlflow.entities import ViewType

    from mlkit import track
    from mlkit.jobs._tracking import JOB_TAG

    _args.positive_int("last", last, error=JobArgumentError)
    client = mlflow.MlflowClient(track.tracking_uri())
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise JobError(f"there is no MLflow experiment named {experiment!r}")
        experiments = [found]
    else:
        experiments = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    names = {e.experiment_id: e.name for e in experiments}
    runs: list[Any] = []
    if names:
        # MLflow's search has no IN for tags; a tag comparison also requires the tag to exist.
        excluded = "" if include_sweep_jobs else "sweep-job"
        runs = client.search_runs(
            list(names),
            filter_string=f"tags.`{JOB_TAG}` != '{excluded}'",
            order_by=["attributes.start_time DESC"],
            max_results=last,
        )
    rows = []
    for r in runs:
        tags, info = r.data.tags, r.info
        end = info.end_time or int(time.time() * 1000)
        rows.append(
            {
                "started": time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.localtime(info.start_time / 1000)
                ),
                "kind": tags.get(JOB_TAG, ""),
                "notebook": os.path.basename(tags.get("mlkit.job.notebook", "")),
                "status": _status(tags.get("mlkit.job.status"), info.status),
                "duration_s": round((end - info.start_time) / 1000, 1),
                "error": tags.get("mlkit.job.error", ""),
                "run_id": info.run_id,
                "experiment": names.get(info.experiment_id, info.experiment_id),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _status(job_status: str | None, mlflow_status: str) -> str:
    # A run whose process died hard (kill -9 of the client) stays RUNNING in MLflow with
    # mlkit.job.status "running"; say so rather than pretend.
    if job_status in (None, "running"):
        return "running" if mlflow_status == "RUNNING" else mlflow_status.lower()
    return job_status
