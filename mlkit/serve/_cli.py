"""``mlkit serve``: serve a model in the foreground, list and stop servers, write a Dockerfile.

Imports stay cheap at module level (``mlkit --help`` loads this module to show its summary);
MLflow and pandas load inside the commands.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click

__all__ = ["serve_group"]


class _ServeGroup(click.Group):
    """``mlkit serve MODEL`` is short for ``mlkit serve run MODEL``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from None


@click.group(cls=_ServeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def serve_group() -> None:
    """Serve MLflow models over REST (MODEL | list | stop | keys | observability | dockerfile |
    lambda).

    \b
      mlkit serve models:/iris@champion --port 8000
      mlkit serve models:/iris@champion --replicas 2 --max-batch-rows 64
      mlkit serve keys create ci-client --rate-limit 100/minute
      mlkit serve list
      mlkit serve stop iris-champion      (or --all)
      mlkit serve dockerfile models:/iris@champion build/iris
      mlkit serve lambda models:/iris@champion build/iris-lambda   (AWS Lambda image context)
      mlkit serve observability obs/      (Prometheus config + Grafana dashboard)
    """


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@serve_group.command("run")
@click.argument("model")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="port to listen on (0: a free one)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=1, show_default=True,
              help="uvicorn worker processes")
@click.option("--name", default=None, help="server name (default: from the model)")
@click.option("--metrics", is_flag=True, help="serve Prometheus metrics at /metrics")
@click.option("--log-predictions", is_flag=True, help="append requests and predictions to the "
              "Parquet prediction log under the mlkit home")
@click.option("--replicas", type=click.IntRange(1, 64), default=None,
              help="serve through mlkit's gateway with N batching replicas")
@click.option("--max-batch-rows", type=click.IntRange(min=1), default=64, show_default=True,
              help="with --replicas: rows per model call at most")
@click.option("--max-wait-ms", type=click.FloatRange(0, 1000), default=5.0, show_default=True,
              help="with --replicas: longest wait for company while loaded")
@click.option("--api-keys/--no-api-keys", default=None,
              help="with --replicas: require API keys (default: only off 127.0.0.1)")
@click.option("--gateway", default=None, help="add MODEL to the running gateway of this name")
@click.option("--scale-to-zero", default=None,
              help="with --replicas: stop idle replicas after e.g. 10m; the next request "
                   "starts them")
def run_command(model: str, port: int, host: str, workers: int, name: str | None, metrics: bool,
                log_predictions: bool, replicas: int | None, max_batch_rows: int,
                max_wait_ms: float, api_keys: bool | None, gateway: str | None,
                scale_to_zero: str | None) -> None:
    """Serve MODEL in the foreground until Ctrl-C (or SIGTERM), then stop it cleanly."""
    from mlkit.exceptions import MlkitError
    from mlkit.serve import _process
    from mlkit.serve._server import start

    extra: dict[str, Any] = {}
    if replicas is not None or gateway is not None or scale_to_zero is not None:
        extra = {"replicas": replicas or 1, "max_batch_rows": max_batch_rows,
                 "max_wait_ms": max_wait_ms, "api_keys": api_keys, "gateway": gateway,
                 "scale_to_zero": scale_to_zero}
    try:
        srv = start(model, port=port, host=host, workers=workers, name=name,
                    log_predictions=log_predictions, metrics=metrics, **extra)
    except MlkitError as exc:
        _fail(exc)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    click.echo(f"serving {model} as {srv.name!r} at {srv.url}  (POST {srv.url}/invocations; "
               "Ctrl-C stops)")
    if srv.metrics_url:
        click.echo(f"metrics: {srv.metrics_url}")
    if srv.predictions_path:
        click.echo(f"prediction log: {srv.predictions_path}")
    code = 0
    try:
        proc = _process.PROCS.get(srv.pid)
        while proc is not None and proc.poll() is None:
            time.sleep(0.5)
        click.echo(f"the server exited by itself; last lines of {srv.log_path}:\n{srv.logs()}",
                   err=True)
        code = 1
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        srv.stop()
        signal.signal(signal.SIGTERM, previous)
    click.echo(f"stopped {srv.name!r}")
    sys.exit(code)


@serve_group.command("list")
def list_command() -> None:
    """List the scoring servers mlkit started (in this mlkit home) that are still running."""
    from mlkit.serve._server import list_servers

    click.echo(repr(list_servers()))


@serve_group.command("stop")
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="stop every running server")
def stop_command(name: str | None, all_: bool) -> None:
    """Stop the server NAME (or all of them with --all); no process is left behind."""
    from mlkit.exceptions import MlkitError
    from mlkit.serve._server import stop

    try:
        stopped = stop(name, all=all_)
    except MlkitError as exc:
        _fail(exc)
    click.echo("stopped: " + ", ".join(stopped) if stopped else "no servers were running")


@serve_group.command("dockerfile")
@click.argument("model")
@click.argument("out_dir", type=click.Path(file_okay=False))
def dockerfile_command(model: str, out_dir: str) -> None:
    """Write a Docker build context for MODEL into OUT_DIR (MLflow's generator; no Docker)."""
    from mlkit.exceptions import MlkitError
    from mlkit.serve._docker import dockerfile

    try:
        out = dockerfile(model, out_dir)
    except MlkitError as exc:
        _fail(exc)
    click.echo(f"wrote {out / 'Dockerfile'} and {out / 'model_dir'}; build with: "
               f"docker build -t {out.name.lower()} {out}")


@serve_group.command("lambda")
@click.argument("model")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--max-body-bytes", type=int, default=0,
              help="larger request bodies get 413 (default: just under Lambda's 6 MB limit)")
@click.option("--python", "python", type=click.Choice(["3.10", "3.11", "3.12", "3.13"]),
              default=None, help="Python of the image (default: the model's)")
@click.option("--base", type=click.Choice(["python", "aws"]), default="python",
              show_default=True, help="python:X.Y-slim + awslambdaric, or AWS's "
              "public.ecr.aws/lambda/python:X.Y")
def lambda_command(model: str, out_dir: str, max_body_bytes: int, python: str | None,
                   base: str) -> None:
    """Write an AWS Lambda container-image build context for MODEL into OUT_DIR (no Docker)."""
    from mlkit.exceptions import MlkitError
    from mlkit.serve._lambda import lambda_package

    try:
        out = lambda_package(model, out_dir, max_body_bytes=max_body_bytes, python=python,
                             base=base)
    except MlkitError as exc:
        _fail(exc)
    click.echo(f"wrote {out / 'Dockerfile'}, {out / 'lambda_handler.py'} and {out / 'model'}; "
               f"build with: docker build --platform linux/amd64 -t {out.name.lower()} {out}")


@serve_group.group("keys")
def keys_group() -> None:
    """API keys for the gateway (stored hashed under the mlkit home).

    \b
      mlkit serve keys create ci-client --rate-limit 100/minute
      mlkit serve keys list
      mlkit serve keys revoke ci-client
    """


@keys_group.command("create")
@click.argument("name")
@click.option("--rate-limit", default=None,
              help="requests allowed, e.g. 10/second, 100/minute, 1000/hour (default: none)")
def keys_create(name: str, rate_limit: str | None) -> None:
    """Create a key called NAME; it is printed once and stored only as a hash."""
    from mlkit.exceptions import MlkitError
    from mlkit.serve._keys import create

    try:
        info = create(name, rate_limit=rate_limit)
    except MlkitError as exc:
        _fail(exc)
    click.echo(info["key"])
    click.echo(f"created key {info['id']} ({name}); it is shown only now: send it as "
               "'Authorization: Bearer KEY'", err=True)


@keys_group.command("list")
def keys_list() -> None:
    """List the keys (id, name, rate limit, created, revoked); never the keys themselves."""
    from mlkit.exceptions import MlkitError
    from mlkit.serve._keys import list_keys

    try:
        keys = list_keys()
    except MlkitError as exc:
        _fail(exc)
    if not keys:
        click.echo("no API keys (create one with: mlkit serve keys create NAME)")
        return
    rows = [("ID", "NAME", "RATE LIMIT", "CREATED", "REVOKED")]
    rows += [(k["id"], k["name"], k.get("rate_limit") or "-", k["created"],
              k.get("revoked") or "-") for k in keys]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@keys_group.command("revoke")
@click.argument("name_or_id")
def keys_revoke(name_or_id: str) -> None:
    """Revoke the key NAME_OR_ID: running gateways refuse it (403) within a second."""
    from mlkit.exceptions import MlkitError
    from mlkit.serve._keys import revoke

    try:
        ids = revoke(name_or_id)
    except MlkitError as exc:
        _fail(exc)
    click.echo("revoked: " + ", ".join(ids))


@serve_group.command("observability")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--gateway", "gateways", multiple=True,
              help="HOST:PORT of a gateway to scrape (default: every running mlkit gateway)")
@click.option("--keyed-gateway", "keyed", multiple=True,
              help="HOST:PORT of a gateway that checks API keys (key in OUT_DIR/gateway.key)")
@click.option("--scheduler", default=None, help="HOST:PORT of the Dask dashboard to scrape")
def observability_command(out_dir: str, gateways: tuple[str, ...], keyed: tuple[str, ...],
                          scheduler: str | None) -> None:
    """Write a Prometheus scrape config and a Grafana dashboard for the gateways into OUT_DIR."""
    from mlkit.serve._observability import write_configs

    given = [*gateways, *keyed]
    paths = write_configs(out_dir, gateways=given or None, scheduler=scheduler,
                          auth_gateways=list(keyed))
    click.echo(f"wrote {paths['prometheus']} and {paths['dashboard']}; run: "
               f"prometheus --config.file={paths['prometheus']}")
