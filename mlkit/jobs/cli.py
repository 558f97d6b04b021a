"""``mlkit run`` and ``mlkit jobs list``: notebook jobs from a shell, cron or CI.

Non-interactive: no prompts, one line on stderr when a job does not succeed, and documented
exit codes. Engines are imported inside the commands so ``mlkit --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

__all__ = ["run_command", "jobs_group", "EXIT_HELP"]

EXIT_HELP = (
    "Exit codes: 0 ok; 1 the notebook failed (an error, a dead kernel; in a sweep: any job "
    "failed or timed out); 2 bad usage, nothing ran; 3 the notebook stopped early with "
    "sys.exit(); 4 timeout; 130 interrupted."
)


def _quiet_mlflow() -> None:
    # MLflow logs INFO lines ("Creating initial MLflow database tables") on first use; a cron
    # log should only hold mlkit's own lines. An explicit MLFLOW_LOGGING_LEVEL wins.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def _fail(message: str, code: int) -> None:
    click.echo(f"mlkit run: {message}", err=True)
    sys.exit(code)


@click.command(
    "run",
    epilog=EXIT_HELP
    + "\n\nExamples:\n\n  mlkit run train.ipynb -p lr 0.1 -p epochs 20 --timeout 3600\n\n"
    "  mlkit run train.ipynb --grid lr=0.1,0.01 --grid depth=4,6 --workers 2",
)
@click.argument("notebook")
@click.option("-p", "--parameter", "pairs", nargs=2, multiple=True, metavar="NAME VALUE",
              help="Parameter (papermill's -p rules: True/False/None, int, float, else text).")
@click.option("-f", "--parameters-file", "files", multiple=True, metavar="FILE",
              help="YAML file of parameters (repeatable).")
@click.option("-y", "--parameters-yaml", "yamls", multiple=True, metavar="YAML",
              help="YAML string of parameters, e.g. 'layers: [64, 32]'.")
@click.option("--grid", "grid", multiple=True, metavar="NAME=V1,V2,...",
              help="Sweep a parameter over values (repeatable: the cartesian product runs "
              "in parallel on a Dask cluster).")
@click.option("-o", "--output", default=None,
              help="Executed notebook (for a sweep: a folder). Default: under the mlkit home.")
@click.option("-k", "--kernel", default=None,
              help="Kernel name (default: the notebook's, else python3).")
@click.option("--timeout", type=float, default=None,
              help="Seconds the job's cells may take in all (kernel start not counted).")
@click.option("--cell-timeout", type=float, default=None, help="Seconds one cell may take.")
@click.option("--experiment", default=None, help="MLflow experiment (default mlkit-jobs).")
@click.option("--name", default=None, help="MLflow run name (default: the notebook's name).")
@click.option("--cwd", default=None,
              help="Kernel working directory (default: the notebook's folder).")
@click.option("--log-output", is_flag=True, help="Stream the notebook's output to stderr.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: only on an interactive terminal).")
@click.option("--workers", type=int, default=None,
              help="Sweep: start a local cluster with this many workers.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Sweep: run on this Dask scheduler (tcp://HOST:PORT) instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def run_command(notebook: str, pairs: Any, files: tuple[str, ...], yamls: tuple[str, ...],
                grid: tuple[str, ...], output: str | None, kernel: str | None,
                timeout: float | None, cell_timeout: float | None, experiment: str | None,
                name: str | None, cwd: str | None, log_output: bool, progress: bool | None,
                workers: int | None, scheduler: str | None, as_json: bool) -> None:
    """Run NOTEBOOK with papermill and record it in MLflow (a sweep with --grid)."""
    from mlkit.exceptions import JobError, MlkitError

    _quiet_mlflow()
    try:
        from mlkit.jobs._params import collect_parameters

        parameters = collect_parameters(files, yamls, pairs)
        if grid:
            code = _sweep(notebook, grid, parameters, output=output, kernel=kernel,
                          timeout=timeout, cell_timeout=cell_timeout, experiment=experiment,
                          name=name, cwd=cwd, progress=progress, workers=workers,
                          scheduler=scheduler, as_json=as_json)
        else:
            if workers is not None or scheduler is not None:
                raise JobError("--workers and --scheduler only apply to a sweep (--grid)")
            code = _single(notebook, parameters, output=output, kernel=kernel, timeout=timeout,
                           cell_timeout=cell_timeout, experiment=experiment, name=name, cwd=cwd,
                           progress=progress, log_output=log_output, as_json=as_json)
    except JobError as exc:
        _fail(f"error: {exc}", 2)
    except MlkitError as exc:
        _fail(f"error: {exc}", 1)
    except KeyboardInterrupt:
        _fail("interrupted; the MLflow run was marked KILLED", 130)
    sys.exit(code)


def _single(notebook: str, parameters: dict, *, as_json: bool, **kw: Any) -> int:
    from dataclasses import asdict

    from mlkit.jobs._run import run

    result = run(notebook, parameters, raise_on_error=False, **kw)
    if as_json:
        data = {k: v for k, v in asdict(result).items() if not k.startswith("_")}
        data["exit_code"] = result.exit_code
        click.echo(json.dumps(data, allow_nan=True))
    elif result.ok:
        click.echo(f"mlkit run: {result.summary()}")
        if result.recorded:
            click.echo("recorded: " + json.dumps(result.recorded, allow_nan=True))
    if not result.ok:
        click.echo(f"mlkit run: {result.summary()}", err=True)
    return result.exit_code


def _sweep(notebook: str, grid_items: tuple[str, ...], parameters: dict, *, workers: int | None,
           scheduler: str | None, as_json: bool, **kw: Any) -> int:
    import mlkit
    from mlkit.jobs._params import parse_grid
    from mlkit.jobs._sweep import sweep

    grid = parse_grid(grid_items)
    kw.pop("log_output", None)
    if scheduler is not None and workers is not None:
        from mlkit.exceptions import JobError

        raise JobError("give --workers (start a local cluster) or --scheduler (join one), not both")
    owned = mlkit.cluster.current() is None  # in a plain `mlkit run` process: always
    if scheduler is not None:
        mlkit.cluster.connect(scheduler)
    elif owned:
        # A cron-started sweep owns its cluster: no dashboard, stopped at the end.
        mlkit.cluster.up(workers=workers, dashboard=False)
    try:
        table = sweep(notebook, grid, parameters, verbose=not as_json, **kw)
    finally:
        if owned:  # stop the cluster we started, or leave the scheduler we joined
            mlkit.cluster.down()
    code = int(table.attrs["exit_code"])
    counts = table["status"].value_counts().to_dict()
    line = (
        f"sweep of {len(table)} jobs: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; outputs: {table.attrs['output']}; MLflow run {table.attrs['run_id']} "
        f"(experiment {table.attrs['experiment']})"
    )
    if as_json:
        click.echo(json.dumps({"exit_code": code, "run_id": table.attrs["run_id"],
                               "jobs": json.loads(table.to_json(orient="records"))}))
    else:
        click.echo(f"mlkit run: {line}", err=code != 0)
    return code


@click.group("jobs")
def jobs_group() -> None:
    """Notebook job runs recorded by `mlkit run` (and mlkit.jobs.run / sweep)."""


@jobs_group.command("list")
@click.option("--last", "-n", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many runs to show.")
@click.option("--experiment", default=None, help="Only this MLflow experiment.")
@click.option("--all", "include_sweep_jobs", is_flag=True, help="Also list each sweep's jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records.")
def list_command(last: int, experiment: str | None, include_sweep_jobs: bool,
                 as_json: bool) -> None:
    """Show recent job runs and their status (newest first)."""
    from mlkit.exceptions import MlkitError
    from mlkit.jobs._history import list_runs

    _quiet_mlflow()
    try:
        table = list_runs(last, experiment=experiment, include_sweep_jobs=include_sweep_jobs)
    except MlkitError as exc:
        click.echo(f"mlkit jobs list: error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(table.to_json(orient="records"))
    elif table.empty:
        from mlkit import track

        click.echo(f"no job runs recorded yet in {track.tracking_uri()}")
    else:
        import pandas as pd

        with pd.option_context("display.width", 250, "display.max_colwidth", 80):
            click.echo(table.to_string(index=False))
