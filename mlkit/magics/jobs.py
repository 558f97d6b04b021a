"""``%mlscale run`` (one notebook job, or a sweep with ``--grid``) and ``%mlscale jobs``."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._subcommands import subcommand

__all__: list[str] = []


def _unquote(text: str | None) -> str | None:
    """IPython's argument splitter keeps the quotes around a quoted value; a shell drops them."""
    if text and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


@subcommand("run")
@magic_arguments()
@argument("notebook", help="the notebook to run")
@argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
          help="parameter (papermill's -p rules: True/False/None, int, float, else text)")
@argument("-f", "--parameters-file", action="append", metavar="FILE", help="YAML parameters file")
@argument("-y", "--parameters-yaml", action="append", metavar="YAML", help="YAML parameters")
@argument("--grid", action="append", metavar="NAME=V1,V2",
          help="sweep NAME over values on the cluster (repeatable: cartesian product)")
@argument("-o", "--output", default=None, help="executed notebook (a folder for a sweep)")
@argument("-k", "--kernel", default=None,
          help="kernel name (default: the notebook's, else python3)")
@argument("--timeout", type=_seconds, default=None,
          help="seconds the job's cells may take in all (kernel start not counted)")
@argument("--cell-timeout", type=_seconds, default=None, help="seconds one cell may take")
@argument("--experiment", default=None, help="MLflow experiment (default mlkit-jobs)")
@argument("--name", default=None, help="MLflow run name")
def run(ctx: Any, args: Any, cell: str | None) -> Any:
    """Run a notebook as a recorded papermill job (a parallel sweep with --grid).

    ::

        In [1]: %mlscale run train.ipynb -p lr 0.1 --timeout 600
        In [2]: %mlscale run train.ipynb --grid lr=0.1,0.01 --grid depth=4,6
    """
    from mlkit.jobs._params import collect_parameters

    parameters = collect_parameters(
        [_unquote(f) for f in args.parameters_file or ()],
        [_unquote(y) for y in args.parameters_yaml or ()],
        [(name, _unquote(value)) for name, value in args.parameter or ()],
    )
    notebook = _unquote(args.notebook)
    options = dict(output=_unquote(args.output), kernel=args.kernel, timeout=args.timeout,
                   cell_timeout=args.cell_timeout, experiment=_unquote(args.experiment),
                   name=_unquote(args.name))
    if args.grid:
        from mlkit.jobs import sweep
        from mlkit.jobs._params import parse_grid

        return sweep(notebook, parse_grid([_unquote(g) for g in args.grid]), parameters, **options)
    from mlkit.jobs import run as api_run

    return api_run(notebook, parameters, **options)


@subcommand("jobs")
@magic_arguments()
@argument("--last", "-n", type=int, default=10, help="how many runs to show")
@argument("--experiment", default=None, help="only this MLflow experiment")
def jobs(ctx: Any, args: Any, cell: str | None) -> Any:
    """Recent notebook job runs and their status (newest first).

    ::

        In [1]: %mlscale jobs --last 5
    """
    from mlkit.jobs import list_runs

    return list_runs(args.last, experiment=args.experiment)
