"""``mlkit scaling-report``: the scaling report from a shell (see :func:`mlkit.scaling.report`).

Examples
--------
.. code-block:: console

    $ mlkit scaling-report --workers 1,2 --out scaling
    $ mlkit scaling-report --workers 1,2,4 --scale 8 --clients 1,8,32 --out big
"""

from __future__ import annotations

import sys

import click

__all__ = ["scaling_report_command"]


def _counts(text: str | None, name: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"{text!r} must be whole numbers separated by commas, e.g. 1,8",
                                 param_hint=name)
    return tuple(int(p) for p in parts)


def _fractions(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(p) for p in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} must be shares separated by commas, e.g. 0.1,0.3,1",
                                 param_hint="--train-fractions") from None


@click.command("scaling-report")
@click.option("--workers", default="1,2", show_default=True,
              help="Worker counts to measure, comma-separated (at most one per core here).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for scaling_report.html and .csv (default: under the mlkit home).")
@click.option("--scale", type=int, default=1, show_default=True,
              help="Multiply rows, rounds, trials and requests.")
@click.option("--rows", type=int, default=None, help="Rows of the synthetic table.")
@click.option("--rounds", type=int, default=None, help="Boosting rounds per training.")
@click.option("--trials", type=int, default=None, help="Tuning trials per worker count.")
@click.option("--requests", type=int, default=None, help="HTTP requests per concurrent client.")
@click.option("--clients", default=None,
              help="Concurrent clients of the served model, e.g. 1,8,32.")
@click.option("--train-fractions", default=None, help="Shares of the training rows, e.g. 0.1,1.")
@click.option("--experiment", default="mlkit-scaling", show_default=True,
              help="MLflow experiment of the report's run.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def scaling_report_command(
    workers: str, out: str | None, scale: int, rows: int | None, rounds: int | None,
    trials: int | None, requests: int | None, clients: str | None,
    train_fractions: str | None, experiment: str, seed: int, no_progress: bool,
) -> None:
    """Measure what adding workers buys on this cluster and write an HTML report.

    Throughput of preprocessing, training, tuning and batch scoring for each worker count (with
    the ideal line and the efficiency), the served model's latency under concurrent clients and
    accuracy against training-set size; logged to one MLflow run.
    """
    from mlkit.exceptions import ConfigError, MlkitError
    from mlkit.scaling import report

    try:
        rep = report(
            workers, out, rows=rows, rounds=rounds, trials=trials, requests=requests,
            clients=_counts(clients, "--clients"), train_fractions=_fractions(train_fractions),
            scale=scale, experiment=experiment, seed=seed, progress=not no_progress,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except MlkitError as exc:
        click.echo(f"mlkit scaling-report failed: {exc}", err=True)
        sys.exit(1)
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        click.echo(rep.table.to_string(index=False))
    click.echo(f"\nreport: {rep.html_path}")
    click.echo(f"MLflow run: {rep.run_id}")
