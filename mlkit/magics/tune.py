"""``%%mlscale tune``: run the cell's ``objective`` as a study across the cluster."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._subcommands import positive_int as _positive
from mlkit.magics._subcommands import subcommand

__all__: list[str] = []


def _defines_objective(cell: str) -> bool:
    """True if the cell binds the name ``objective`` at top level (def, assignment or import)."""
    import ast

    try:
        tree = ast.parse(cell)
    except SyntaxError as exc:
        raise UsageError(f"%%mlscale tune: the cell has a syntax error: {exc}") from None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "objective":
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "objective" for t in targets):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name) == "objective" for a in node.names):
                return True
    return False


@subcommand("tune", cell=True)
@magic_arguments()
@argument("--trials", "-n", type=_positive, required=True, help="trials to finish")
@argument(
    "--direction",
    "-d",
    default="minimize",
    help="minimize or maximize (comma-separated for several objectives)",
)
@argument("--study", "-s", default=None, help="study name; an existing study is continued")
@argument("--timeout", type=float, default=None, help="seconds after which no new trial starts")
@argument(
    "--concurrency",
    "-c",
    type=_positive,
    default=None,
    help="trials at once (default: all worker threads)",
)
@argument("--on", choices=("workers", "client"), default="workers", help="where trials run")
@argument("--storage", default=None, help="Optuna storage URL, journal path or 'dask'")
@argument("--experiment", default=None, help="MLflow experiment")
@argument("--no-track", action="store_true", help="do not record MLflow runs")
def tune(ctx: Any, args: Any, cell: str | None) -> None:
    """Tune the objective(trial) function the cell defines; the finished study is bound to `study`.

    ::

        In [1]: %%mlscale tune --trials 50 --direction maximize --study rf
           ...: def objective(trial):
           ...:     depth = trial.suggest_int("depth", 2, 12)
           ...:     return score(depth)
    """
    from mlkit.tune import tune as api_tune

    if cell is None or not cell.strip():
        raise UsageError(
            "%%mlscale tune is a cell magic: put `def objective(trial): ...` in the cell below it"
        )
    if not _defines_objective(cell):
        raise UsageError("%%mlscale tune: the cell must define `def objective(trial): ...`")
    ns = ctx.shell.user_ns
    exec(compile(cell, "<%%mlscale tune>", "exec"), ns)  # noqa: S102 - the cell is the user's code
    directions = [d.strip() for d in args.direction.split(",")]
    study = api_tune(
        ns["objective"],
        args.trials,
        directions[0] if len(directions) == 1 else directions,
        study_name=args.study,
        timeout=args.timeout,
        concurrency=args.concurrency,
        storage=args.storage,
        on=args.on,
        experiment=args.experiment,
        track=not args.no_track,
    )
    ns["study"] = study
    if not _in_kernel():
        print(study)


def _in_kernel() -> bool:
    from mlkit.widgets import in_kernel

    return in_kernel()
