"""``%mlscale up | connect | status | scale | logs | down``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._subcommands import positive_int as _positive
from mlkit.magics._subcommands import subcommand

__all__: list[str] = []


def _literal(raw: str) -> Any:
    """A Python literal, else the text itself; ``[a,b]`` of bare words is a list of strings.

    ``hosts=[10.0.0.1,10.0.0.2]`` (how one types it on a shell-like line) is no literal: its
    items are then taken one by one, as literals or as text.
    """
    import ast

    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_literal(item.strip()) for item in text[1:-1].split(",") if item.strip()]
    return raw


def _options(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``k=v`` strings into keyword arguments; values are parsed as Python literals.

    >>> _options(["hosts=[10.0.0.1,10.0.0.2]", "port=22", "name=x"])
    {'hosts': ['10.0.0.1', '10.0.0.2'], 'port': 22, 'name': 'x'}
    """
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if len(pair) >= 2 and pair[0] == pair[-1] and pair[0] in "'\"":
            pair = pair[1:-1]  # IPython's splitter keeps the quotes of `-o "k={'a': 1}"`
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--option expects KEY=VALUE with KEY a Python name, got {pair!r}")
        out[key] = _literal(raw)
    return out


def _publish(ctx: Any, handle: Any) -> None:
    ctx.shell.user_ns["client"] = handle.client


@subcommand("up")
@magic_arguments()
@argument(
    "--workers", "-n", type=_positive, default=None, help="CPU worker processes (GPU: one per GPU)"
)
@argument("--gpus", default=None, help="'all', a count, or device indices like '0,1'")
@argument("--threads", type=_positive, default=None, help="threads per worker")
@argument("--memory", default=None, help="memory limit per worker, e.g. 4GB")
@argument(
    "--cluster",
    default=None,
    help="dotted Dask cluster manager class, e.g. dask_jobqueue.SLURMCluster",
)
@argument(
    "--option",
    "-o",
    action="append",
    metavar="KEY=VALUE",
    help="extra option for the cluster class (repeatable)",
)
@argument(
    "--replace", action="store_true", help="stop a running cluster with a different spec first"
)
@argument(
    "--scheduler",
    default=None,
    help="join this running scheduler instead (default: DASK_SCHEDULER_ADDRESS when set)",
)
def up(ctx: Any, args: Any, cell: str | None) -> Any:
    """Start a local (or Dask-CUDA / managed) cluster and show its live widget.

    With ``--scheduler ADDRESS`` or Dask's ``DASK_SCHEDULER_ADDRESS`` set, join that scheduler
    instead (the same notebook then runs on a cluster elsewhere). ``--cluster`` names any Dask
    cluster manager; its options go with ``-o KEY=VALUE`` (Python literals; ``[a,b]`` is a list).

    ::

        In [1]: %mlscale up --workers 2 --memory 2GB
        In [2]: %mlscale up --cluster distributed.SSHCluster -o hosts=[10.0.0.1,10.0.0.2,10.0.0.3]
    """
    from mlkit.cluster import up as api_up

    handle = api_up(
        workers=args.workers,
        gpus=args.gpus,
        threads_per_worker=args.threads,
        memory_limit=args.memory,
        cluster=args.cluster,
        replace=args.replace,
        scheduler=args.scheduler,
        **_options(args.option),
    )
    _publish(ctx, handle)
    return handle


@subcommand("connect")
@magic_arguments()
@argument("address", help="scheduler address, e.g. tcp://127.0.0.1:8786")
@argument("--timeout", type=float, default=10.0, help="seconds to wait for the scheduler")
@argument("--replace", action="store_true", help="leave the active cluster first")
@argument("--tracking", choices=["server"], default=None,
          help="'server': start mlkit's tracking server when the workers are on other hosts")
def connect(ctx: Any, args: Any, cell: str | None) -> Any:
    """Join an existing Dask scheduler (the way out when one machine is not enough).

    ::

        In [1]: %mlscale connect tcp://127.0.0.1:8786
        In [2]: %mlscale connect tcp://scheduler:8786 --tracking server --replace
    """
    from mlkit.cluster import connect as api_connect

    handle = api_connect(args.address, timeout=args.timeout, replace=args.replace,
                         tracking=args.tracking)
    _publish(ctx, handle)
    return handle


@subcommand("status")
@magic_arguments()
def status(ctx: Any, args: Any, cell: str | None) -> Any:
    """Show the active cluster: workers, threads, memory, GPUs, dashboard.

    ::

        In [1]: %mlscale status
    """
    from mlkit.cluster import current
    from mlkit.exceptions import NoClusterError

    handle = current()
    if handle is None:
        raise NoClusterError("no cluster is running: start one with %mlscale up")
    return handle


@subcommand("scale")
@magic_arguments()
@argument("n", type=_positive, help="number of workers")
def scale(ctx: Any, args: Any, cell: str | None) -> Any:
    """Scale the active cluster to N workers (the live cluster widget follows).

    ::

        In [1]: %mlscale scale 3
    """
    from mlkit._display import in_kernel
    from mlkit.cluster import scale as api_scale

    st = api_scale(args.n)
    if in_kernel():
        # The one live widget redraws itself (and its saved static form); a second, static
        # table here would only disagree with it later.
        print(f"scaled to {st.n_workers} workers")
        return None
    return st


@subcommand("logs")
@magic_arguments()
@argument(
    "worker", nargs="?", default=None, help="'scheduler', a worker name or address (default: all)"
)
@argument("-n", "--lines", type=_positive, default=50, help="lines per process (default 50)")
def logs(ctx: Any, args: Any, cell: str | None) -> None:
    """Print the workers' recent output (kept out of the notebook: xgboost, Dask logs, prints).

    ::

        In [1]: %mlscale logs
        In [2]: %mlscale logs 0 -n 200
        In [3]: %mlscale logs scheduler
    """
    from mlkit.cluster import logs as api_logs

    print(api_logs(args.worker, n=args.lines))


@subcommand("down")
@magic_arguments()
def down(ctx: Any, args: Any, cell: str | None) -> None:
    """Stop the active cluster (or leave a joined one).

    ::

        In [1]: %mlscale down
    """
    from mlkit.cluster import down as api_down

    stopped = api_down()
    if ctx.shell.user_ns.get("client") is not None and stopped:
        ctx.shell.user_ns.pop("client", None)
    print("cluster stopped" if stopped else "no cluster was running")
