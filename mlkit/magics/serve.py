"""``%mlscale serve MODEL | list | stop NAME|--all``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._subcommands import positive_int as _positive
from mlkit.magics._subcommands import subcommand

__all__: list[str] = []


def _port(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0: a free one), got {value}")
    return value


def _wait_ms(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds, got {text!r}") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"--max-wait-ms is 0..1000, got {value:g}")
    return value


@subcommand("serve")
@magic_arguments()
@argument("target", help="a model (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/..., a path), "
          "or 'list', or 'stop'")
@argument("server", nargs="?", default=None, help="with 'stop': the name of the server to stop")
@argument("--port", "-p", type=_port, default=0, help="port to listen on (default: a free one)")
@argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
@argument("--workers", "-w", type=_positive, default=1, help="uvicorn worker processes")
@argument("--name", default=None, help="server name (default: from the model)")
@argument("--metrics", action="store_true", help="serve Prometheus metrics at /metrics")
@argument("--log-predictions", action="store_true",
          help="log requests and predictions to Parquet under the mlkit home")
@argument("--replicas", "-r", type=_positive, default=None,
          help="serve through mlkit's gateway with N batching replicas")
@argument("--max-batch-rows", type=_positive, default=64,
          help="with --replicas: rows per model call at most (default 64)")
@argument("--max-wait-ms", type=_wait_ms, default=5.0,
          help="with --replicas: longest wait for company while loaded (default 5)")
@argument("--api-keys", action="store_true", default=None,
          help="with --replicas: require API keys (always on off 127.0.0.1)")
@argument("--gateway", default=None, help="add the model to the running gateway of this name")
@argument("--scale-to-zero", default=None,
          help="with --replicas: stop idle replicas after e.g. 10m (the next request starts them)")
@argument("--on", default="local", help="with --replicas: 'local' or 'cluster' (replicas on "
          "the Dask cluster's workers, one per worker unless --replicas says how many)")
@argument("--timeout", type=_positive, default=180,
          help="seconds to wait for the server (or gateway and a replica) to answer")
@argument("--all", action="store_true", help="with 'stop': stop every server")
def serve(ctx: Any, args: Any, cell: str | None) -> Any:
    """Serve a model over REST with MLflow's scoring server; list or stop servers.

    ::

        In [1]: srv = %mlscale serve models:/iris@champion --port 8000
        In [2]: %mlscale serve list
        In [3]: %mlscale serve stop iris-champion
        In [4]: %mlscale serve stop --all
        In [5]: gw = %mlscale serve models:/iris@champion --replicas 2 --max-batch-rows 64
        In [6]: gw.url
        Out[6]: 'http://127.0.0.1:53212/models/iris/champion'
        In [7]: gw = %mlscale serve models:/iris@champion --on cluster   # one per worker

    With ``--replicas`` (or ``--on cluster``) the gateway's live widget is shown in a kernel.
    """
    from mlkit import serve as api

    if args.target == "list":
        if args.server or args.all:
            raise UsageError("%mlscale serve list takes no other arguments")
        return api.list_servers()
    if args.target == "stop":
        stopped = api.stop(args.server, all=args.all)
        print("stopped: " + ", ".join(stopped) if stopped else "no servers were running")
        return None
    if args.server is not None or args.all:
        raise UsageError(
            f"%mlscale serve MODEL takes one model, got extra {args.server or '--all'!r}; "
            "to stop a server use: %mlscale serve stop NAME"
        )
    if args.on not in ("local", "cluster"):
        raise UsageError(f"--on must be 'local' or 'cluster', got {args.on!r}")
    extra: dict[str, Any] = {}
    if args.replicas is not None or args.gateway is not None or args.scale_to_zero is not None \
            or args.on == "cluster":
        extra = {"replicas": args.replicas or (None if args.on == "cluster" else 1),
                 "max_batch_rows": args.max_batch_rows,
                 "max_wait_ms": args.max_wait_ms, "api_keys": args.api_keys,
                 "gateway": args.gateway, "scale_to_zero": args.scale_to_zero}
        if args.on == "cluster":
            extra["on"] = "cluster"
    srv = api.start(
        args.target, port=args.port, host=args.host, workers=args.workers, name=args.name,
        log_predictions=args.log_predictions, metrics=args.metrics, **extra,
        **({"timeout": float(args.timeout)} if args.timeout != 180 else {}),
    )
    if extra:
        _show_widget(srv)
    return srv


def _show_widget(srv: Any) -> None:
    """In a kernel, the gateway's live widget (its bundle carries static HTML and text too)."""
    from mlkit._display import can_draw_widgets, in_kernel

    if not in_kernel():
        return
    from IPython.display import display

    if can_draw_widgets():
        display(srv.widget())
    else:
        from mlkit._display import mimebundle

        st = srv.monitor().poll()
        display(mimebundle(st._repr_html_(), str(st)), raw=True)
