"""``%mlscale data profile VAR_OR_PATH``."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._subcommands import subcommand

__all__: list[str] = []


@subcommand("data")
@magic_arguments()
@argument("action", choices=["profile"], help="what to do with the data")
@argument("target", help="a DataFrame variable of the notebook, or a dataset path / URL")
@argument("--top", type=int, default=3, help="most frequent values shown per text column")
def data(ctx: Any, args: Any, cell: str | None) -> Any:
    """Profile a DataFrame or dataset on the cluster (rows, dtypes, missing, min/max/mean, top
    categories), shown as a table.

    ::

        In [1]: %mlscale data profile df
        In [2]: %mlscale data profile s3://bucket/sales/
    """
    from mlkit.data import profile

    target = ctx.shell.user_ns.get(args.target, args.target)
    return profile(target, top=args.top, name=args.target)
