"""The ``mlkit`` command (click).

Subcommands live next to the API they call and load lazily, so ``mlkit --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["main", "cli"]

# name -> "module:attribute" of a click command; each capability adds its own line.
_LAZY_COMMANDS: dict[str, str] = {
    "demo": "mlkit.demo:demo_command",
    "info": "mlkit.info:info_command",
    "jobs": "mlkit.jobs.cli:jobs_group",
    "run": "mlkit.jobs.cli:run_command",
    "serve": "mlkit.serve._cli:serve_group",
    "monitor": "mlkit.monitor.cli:monitor_command",
    "scaling-report": "mlkit.scaling._cli:scaling_report_command",
}


class _LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _LAZY_COMMANDS:
            module, _, attr = _LAZY_COMMANDS[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlkit")
def cli() -> None:
    """mlkit: scale machine learning from a notebook (Dask, xgboost, torch, Optuna, MLflow)."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``mlkit`` console script."""
    return cli.main(args=argv, prog_name="mlkit")


if __name__ == "__main__":  # pragma: no cover
    main()
