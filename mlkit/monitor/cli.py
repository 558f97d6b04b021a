"""``mlkit monitor MODEL``: one drift check of a served model's live traffic, for cron.

Exit status: 0 no drift (or no traffic in the window), 1 drift, 2 the check could not run.
This module is imported by ``mlkit --help``: heavy imports stay inside the command body.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

__all__ = ["monitor_command", "EXIT_OK", "EXIT_DRIFT", "EXIT_ERROR"]

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2


def _thresholds(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--threshold")
        value: Any = raw
        if raw.lower() in ("none", "off"):
            value = None
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    continue
        out[key.strip()] = value
    return out


class _Failed(click.ClickException):
    exit_code = EXIT_ERROR


@click.command("monitor")
@click.argument("model")
@click.option("--since", default="1h", show_default=True,
              help="window of live traffic: 30m, 1h, 7d ... or an ISO date/time")
@click.option("--reference", "-r", default=None, metavar="PATH_OR_RUN",
              help="reference profile: JSON file, MLflow run id, runs:/ or models:/ URI "
                   "(default: the one registered for MODEL)")
@click.option("--features", default=None, help="comma-separated columns to compare")
@click.option("--threshold", "-t", multiple=True, metavar="KEY=VALUE",
              help="pvalue, correction, psi, js or min_rows; 'none' turns one off (repeatable)")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="also write the report as a self-contained HTML file")
@click.option("--log", "log_mlflow", is_flag=True, help="log the report to MLflow")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON object")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="scan on this Dask scheduler (default: in this process)")
def monitor_command(
    model: str,
    since: str,
    reference: str | None,
    features: str | None,
    threshold: tuple[str, ...],
    html_path: str | None,
    log_mlflow: bool,
    as_json: bool,
    scheduler: str | None,
) -> None:
    """Check MODEL's logged predictions for drift against its reference; exit 1 on drift.

    MODEL is the name of a model served with log_predictions=True. Exit status: 0 no drift
    (or no traffic in the window), 1 drift, 2 the check could not run. In cron:

        mlkit monitor churn --since 1h; [ $? -eq 1 ] && mlkit run retrain.ipynb
    """
    from mlkit.exceptions import MlkitError

    try:
        from mlkit.monitor._watch import check

        if scheduler:
            from mlkit import cluster

            cluster.connect(scheduler)
        names = [f.strip() for f in features.split(",") if f.strip()] if features else None
        report = check(model, since=since, reference=reference, features=names,
                       thresholds=_thresholds(threshold))
        if report is None:
            click.echo(f"no prediction logged for {model!r} in the window (--since {since}): "
                       "nothing to check")
            sys.exit(EXIT_OK)
        if html_path:
            report.save(html_path)
        if log_mlflow:
            run_id = report.log()
            click.echo(f"logged to MLflow run {run_id}", err=True)
    except MlkitError as exc:
        raise _Failed(str(exc)) from None
    click.echo(json.dumps(report.to_dict()) if as_json else str(report))
    sys.exit(EXIT_DRIFT if report.drifted else EXIT_OK)
