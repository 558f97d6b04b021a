"""``%mlscale monitor MODEL [--since 1h] [--reference PATH_OR_RUN]``."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._subcommands import subcommand

__all__: list[str] = []


@subcommand("monitor")
@magic_arguments()
@argument("model", help="name of a model served with --log-predictions")
@argument("--since", default="1h", help="window of live traffic: 30m, 1h, 7d ... (default 1h)")
@argument("--reference", "-r", default=None,
          help="reference profile: JSON file, MLflow run id, runs:/ or models:/ URI "
               "(default: the one registered for MODEL)")
@argument("--features", default=None, help="comma-separated columns to compare")
def monitor(ctx: Any, args: Any, cell: str | None) -> Any:
    """Check a served model's logged traffic for drift; shows the drift report.

    ::

        In [1]: %mlscale monitor churn --since 1h
        In [2]: report = %mlscale monitor churn --reference models:/churn/3
    """
    from mlkit.monitor import check

    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    report = check(args.model, since=args.since, reference=args.reference, features=features)
    if report is None:
        print(f"no prediction logged for {args.model!r} in the last {args.since}: nothing to check")
    return report
