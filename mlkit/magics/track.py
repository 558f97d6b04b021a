"""``%mlscale track on|off|status``, ``models``, ``register`` and ``promote``."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments

from mlkit.magics._subcommands import subcommand

__all__: list[str] = []


@subcommand("track")
@magic_arguments()
@argument("state", nargs="?", choices=["on", "off", "status"], default="status",
          help="on: mlkit's APIs record runs; off: they open none; status (default): show")
@argument("--experiment", "-e", default=None, help="experiment for mlkit's runs (with 'on')")
def track(ctx: Any, args: Any, cell: str | None) -> Any:
    """Switch mlkit's automatic MLflow runs on or off, and choose their experiment.

    ``off`` only stops the runs mlkit's APIs open on their own; runs you open yourself are kept.

    ::

        In [1]: %mlscale track on --experiment churn
        tracking on: experiment 'churn' in sqlite:///.../.mlkit/mlflow/mlflow.db
        In [2]: %mlscale track off
    """
    from mlkit import track as api
    from mlkit.exceptions import ConfigError

    if args.state == "on":
        return api.enable(args.experiment)
    if args.experiment is not None:
        raise ConfigError(f"--experiment goes with 'track on', not 'track {args.state}'")
    return api.disable() if args.state == "off" else api.status()


@subcommand("models")
@magic_arguments()
@argument("name", nargs="?", default=None, help="only this registered model")
def models(ctx: Any, args: Any, cell: str | None) -> Any:
    """List registered model versions and their aliases.

    ::

        In [1]: %mlscale models churn
    """
    from mlkit.track import list_models as api_models

    return api_models(args.name)


@subcommand("register")
@magic_arguments()
@argument("model", help="models:/ or runs:/ URI, or a run id (its logged model)")
@argument("name", help="registered model name")
@argument("--alias", "-a", default="candidate", help="alias for the new version (candidate)")
def register(ctx: Any, args: Any, cell: str | None) -> Any:
    """Register a model as a new version and give it an alias.

    ::

        In [1]: %mlscale register 3f2c...e1 churn --alias candidate
    """
    from mlkit.track import register as api_register

    return api_register(args.model, args.name, alias=args.alias)


@subcommand("promote")
@magic_arguments()
@argument("name", help="registered model name")
@argument("version", help="version number, or an alias naming one (e.g. candidate)")
@argument("--alias", "-a", default="champion", help="alias to move onto it (default champion)")
def promote(ctx: Any, args: Any, cell: str | None) -> Any:
    """Point an alias (default champion) at a model version.

    ::

        In [1]: %mlscale promote churn 3
        In [2]: %mlscale promote churn candidate --alias champion
    """
    from mlkit.track import promote as api_promote

    return api_promote(args.name, args.version, alias=args.alias)
