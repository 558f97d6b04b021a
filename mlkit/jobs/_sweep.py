"""``mlkit.jobs.sweep``: a grid of notebook jobs run in parallel on the Dask cluster.

Each job is one Dask task that runs papermill (and so its own kernel) inside a worker process, so
as many notebooks run at once as the cluster has worker threads. Tasks only execute and return a
:class:`~mlkit.jobs._execute.JobOutcome`; the client records the parent MLflow run and one child
run per job as the jobs finish (one writer for the tracking store).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlkit._display import in_kernel, wants_progress
from mlkit.exceptions import JobArgumentError
from mlkit.jobs._execute import (
    JobOutcome,
    JobSpec,
    default_cwd,
    execute,
    kernel_env,
    prepare,
)
from mlkit.jobs._outputs import job_file_name, sweep_folder
from mlkit.jobs._params import check_value, expand_grid, is_number
from mlkit.jobs._run import check_timeout, merge_parameters
from mlkit.jobs._ship import land, run_shipped

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["sweep", "run_on_worker", "sweep_exit_code"]


def run_on_worker(spec: JobSpec, cancel_event: str | None = None) -> JobOutcome:
    """The Dask task of one sweep job: execute the notebook here, return how it ended.

    ``cancel_event`` names a ``distributed.Event``; once it is set (the client was
    interrupted) queued jobs return at once and running ones are stopped by the watchdog.
    """
    event = None
    if cancel_event:
        from distributed import Event, get_client

        # Bind the worker's client here, in the task thread: the watchdog waits from its own.
        event = Event(cancel_event, client=get_client())
        if event.is_set():
            return JobOutcome(
                status="cancelled", output=None, duration_s=0.0, started_at=0.0,
                ename="JobCancelled", evalue="the sweep was interrupted before this job started",
            )
    return execute(spec, stop_event=event)


def _failed(exc: BaseException) -> JobOutcome:
    """A task that did not return (its worker died, or mlkit itself failed there)."""
    return JobOutcome(
        status="failed", output=None, duration_s=0.0, started_at=0.0,
        ename=type(exc).__name__, evalue=" ".join(str(exc).split())[:500],
    )


def sweep_exit_code(statuses: Sequence[str]) -> int:
    """0 all ok; 1 any failed or timed out; 3 some stopped early (none failed); 130 cancelled."""
    s = set(statuses)
    if "cancelled" in s:
        return 130
    if s & {"failed", "timeout"}:
        return 1
    if "stopped" in s:
        return 3
    return 0


def sweep(
    notebook: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    parameters: Mapping[str, Any] | None = None,
    *,
    params_file: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    experiment: str | None = None,
    name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    verbose: bool | None = None,
    client: Any = None,
) -> pd.DataFrame:
    """Run a notebook once per point of a parameter grid, in parallel on the Dask cluster.

    The cartesian product of ``grid`` (with ``parameters`` fixed for every job) becomes one
    Dask task per job, each executing the notebook with papermill in its own kernel on a worker:
    as many at once as there are worker threads. A failing job does not stop the others. The
    client records one parent MLflow run and a child run per job (parameters, status, recorded
    values, executed notebook) as the jobs finish, and shows a progress bar.

    Parameters
    ----------
    notebook : path
        The notebook to run.
    grid : dict of name -> list
        Values to sweep, e.g. ``{"lr": [0.1, 0.01], "depth": [4, 6]}`` (4 jobs).
    parameters : dict, optional
        Values shared by every job (override ``params_file``; may not repeat a grid name).
    params_file : path, optional
        YAML file of shared parameters.
    output : path, optional
        Folder for the executed notebooks (default ``<mlkit home>/jobs/<name>-sweep-<time>/``);
        workers write there, so on a remote cluster use a shared filesystem.
    kernel, timeout, cell_timeout, experiment, cwd
        As in :func:`mlkit.jobs.run`; the timeouts apply to each job.
    name : str, optional
        Name of the parent MLflow run (default ``"<notebook> sweep"``).
    progress : bool, optional
        Progress bar (a tqdm widget in a kernel that ends as a static line, so the saved
        notebook keeps the outcome; text in a terminal); default on in a kernel or an
        interactive terminal.
    verbose : bool, optional
        Print the summary table at the end (default: outside a kernel, where a returned
        DataFrame is not displayed).
    client : distributed.Client, optional
        Default: the active mlkit cluster (:func:`mlkit.cluster.get_client`).

    Returns
    -------
    pandas.DataFrame
        One row per job: the swept parameters, ``status``, the recorded scalar values,
        ``duration_s``, ``error`` (one line), ``output`` and ``run_id``. ``df.attrs`` holds
        ``run_id`` (the parent run), ``experiment`` and ``exit_code``.

    Examples
    --------
    >>> import mlkit
    >>> c = mlkit.cluster.up(workers=2, threads_per_worker=1)                 # doctest: +SKIP
    >>> grid = {"lr": [0.1, 0.01], "depth": [4, 6]}
    >>> table = mlkit.jobs.sweep("train.ipynb", grid)                         # doctest: +SKIP
    >>> table[["lr", "depth", "status", "accuracy"]]                          # doctest: +SKIP
    """
    import mlflow
    import pandas as pd
    from distributed import Event, as_completed, wait

    from mlkit import track
    from mlkit._display import ProgressBar, ProgressState
    from mlkit.cluster import get_client
    from mlkit.jobs._tracking import (
        DEFAULT_EXPERIMENT,
        MLFLOW_STATUS,
        job_tags,
        log_outcome,
        set_final_status,
    )
    from mlkit.track._writer import RunWriter, param_text

    timeout = check_timeout(timeout, "timeout")
    cell_timeout = check_timeout(cell_timeout, "cell_timeout")
    points = expand_grid(grid)
    fixed_in = merge_parameters(parameters, params_file)
    overlap = sorted(set(fixed_in) & set(grid))
    if overlap:
        raise JobArgumentError(
            f"{', '.join(map(repr, overlap))} is both a fixed parameter and swept in the grid: "
            "give it in one place only"
        )
    for point in points:
        for key, value in point.items():
            check_value(value, f"grid value {key!r}")
    path, kernel_name, fixed = prepare(notebook, fixed_in, kernel, extra_names=list(grid))
    client = client if client is not None else get_client()
    folder = sweep_folder(path, output)
    env = kernel_env()
    specs = [
        JobSpec(
            notebook=str(path),
            output=str(folder / job_file_name(i, point)),
            kernel=kernel_name,
            cwd=str(cwd) if cwd is not None else default_cwd(path),
            parameters={**fixed, **point},
            timeout=timeout,
            cell_timeout=cell_timeout,
            env=env,
        )
        for i, point in enumerate(points)
    ]
    experiment = experiment or DEFAULT_EXPERIMENT
    token = uuid.uuid4().hex[:12]
    cancel_name = f"mlkit-sweep-cancel-{token}"
    outcomes: dict[int, JobOutcome] = {}
    child_ids: dict[int, str] = {}
    show = wants_progress(progress)

    parent_tags = job_tags("sweep", str(path), str(folder), kernel_name)
    parent_tags["mlkit.job.grid"] = param_text(dict(grid))
    parent_params = {k: param_text(v) for k, v in fixed.items()}
    parent_params.update({f"grid.{k}": param_text(list(v)) for k, v in grid.items()})
    with track.run(
        name or f"{path.stem} sweep", experiment=experiment, tags=parent_tags, params=parent_params
    ) as parent:
        parent_id = parent.info.run_id
        mlclient = mlflow.MlflowClient(track.tracking_uri())

        def record_child(i: int, outcome: JobOutcome) -> None:
            spec = specs[i]
            label = ", ".join(f"{k}={v}" for k, v in points[i].items())
            tags = job_tags("sweep-job", spec.notebook, outcome.output, kernel_name)
            tags.update({"mlkit.job.index": str(i), "mlkit.job.sweep": parent_id})
            with track.run(
                f"{path.stem} [{label}]",
                experiment=experiment,
                nested=True,
                tags=tags,
                params={k: param_text(v) for k, v in spec.parameters.items()},
            ) as child:
                log_outcome(mlclient, child.info.run_id, outcome, spec.parameters)
            set_final_status(mlclient, child.info.run_id, outcome.status)
            child_ids[i] = child.info.run_id

        from mlkit.cluster._preflight import is_remote

        # Workers without the client's disk get the notebook itself and send the result back.
        shipped = path.read_bytes() if is_remote() else None
        futures = {
            (
                client.submit(run_on_worker, spec, cancel_name,
                              key=f"mlkit-job-{token}-{i:03d}", pure=False)
                if shipped is None else
                client.submit(run_shipped, spec, shipped, cancel_name,
                              key=f"mlkit-job-{token}-{i:03d}", pure=False)
            ): i
            for i, spec in enumerate(specs)
        }
        state = ProgressState(f"sweep {path.stem}", total=len(specs), unit="job")
        bar = ProgressBar(state, enabled=show)
        ended = "failed"
        try:
            failed = 0
            for future in as_completed(futures):
                i = futures[future]
                try:
                    outcome = future.result()
                    if shipped is not None:
                        outcome = land(specs[i], outcome)
                except Exception as exc:
                    outcome = _failed(exc)
                outcomes[i] = outcome
                record_child(i, outcome)
                failed += outcome.status != "ok"
                n = state.position + 1
                state.update(n, {"ok": n - failed, "not_ok": failed})
                bar.refresh()
            ended = "finished" if not failed else "failed"
        except KeyboardInterrupt:
            ended = "stopped"
            # Stop running kernels (their watchdogs poll the event), skip queued jobs, record
            # what ran, then let track.run mark the parent KILLED. The cluster stays usable.
            Event(cancel_name, client=client).set()
            try:
                wait(list(futures), timeout=60)
            except TimeoutError:
                pass
            for future, i in futures.items():
                if i in outcomes or future.status != "finished":
                    continue
                outcome = future.result()
                if shipped is not None:
                    outcome = land(specs[i], outcome)
                outcomes[i] = outcome
                if outcome.output is not None:  # it ran (partly): keep its record
                    record_child(i, outcome)
            raise
        finally:
            bar.close(ended)  # a static final line: jobs ok / not ok, in the saved notebook too
            for future in futures:
                future.release()
        table = _table(points, outcomes, child_ids)
        statuses = [o.status for o in outcomes.values()]
        n_ok = statuses.count("ok")
        writer = RunWriter(parent_id, client=mlclient)
        writer.metrics({"jobs": len(specs), "jobs_ok": n_ok, "jobs_not_ok": len(specs) - n_ok})
        writer.tag("mlkit.job.status", _overall(statuses))
        writer.flush()
        mlclient.log_text(parent_id, table.to_csv(), "summary.csv")
    exit_code = sweep_exit_code(statuses)
    parent_status = "ok" if exit_code == 0 else ("stopped" if exit_code == 3 else "failed")
    set_final_status(mlclient, parent_id, parent_status)
    table.attrs.update(
        run_id=parent_id, experiment=experiment, exit_code=exit_code, output=str(folder),
        status=MLFLOW_STATUS[parent_status],
    )
    if verbose or (verbose is None and not in_kernel()):
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(table.drop(columns=["output", "run_id"]).to_string())
    return table


def _overall(statuses: list[str]) -> str:
    return {0: "ok", 3: "stopped", 130: "cancelled"}.get(sweep_exit_code(statuses), "failed")


def _table(
    points: list[dict[str, Any]], outcomes: dict[int, JobOutcome], child_ids: dict[int, str]
) -> Any:
    import pandas as pd

    rows = []
    names = set(points[0]) if points else set()
    for i, point in enumerate(points):
        outcome = outcomes.get(i)
        row: dict[str, Any] = dict(point)
        row["status"] = outcome.status if outcome else "cancelled"
        for key, value in (outcome.recorded if outcome else {}).items():
            if is_number(value) or value is None or isinstance(value, (str, bool)):
                row[f"recorded.{key}" if key in names else key] = value
        row["duration_s"] = round(outcome.duration_s, 2) if outcome else None
        row["error"] = outcome.summary() if outcome else ""
        row["output"] = outcome.output if outcome else None
        row["run_id"] = child_ids.get(i)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.index.name = "job"
    # recorded columns after status, the bookkeeping ones last
    tail = ["duration_s", "error", "output", "run_id"]
    head = [*points[0].keys(), "status"] if points else ["status"]
    middle = [c for c in table.columns if c not in head and c not in tail]
    return table[[*head, *middle, *tail]]
