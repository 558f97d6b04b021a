"""``%mlscale serve MODEL | list | stop NAME|--all``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._registry import positive_int as _positive
from mlkit.magics._registry import subcommand

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
@argument("--all", action="store_true", help="with 'stop': stop every server")
def serve(ctx: Any, args: Any, cell: str | None) -> Any:
    """Serve a model over REST with MLflow's scoring server; list or stop servers.

    ::

        In [1]: srv = %mlscale serve models:/iris@champion --port 8000
        In [2]: %mlscale serve list
        In [3]: %mlscale serve stop iris-champion
        In [4]: %mlscale serve stop --all
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
    return api.start(
        args.target, port=args.port, host=args.host, workers=args.workers, name=args.name,
        log_predictions=args.log_predictions, metrics=args.metrics,
    )
