"""The public names of ``mlkit.track``, for editors and type checkers.

``mlkit/track/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

from ._datasets import log_dataset
from ._defaults import (
    artifact_root,
    configure,
    run,
    tracking_uri,
)
from ._lineage import (
    git_tags,
    lineage_tags,
    notebook_path,
)
from ._registry import (
    ModelVersionInfo,
    ModelVersions,
    list_models,
    models,
    promote,
    register,
)
from ._server import (
    TrackingServer,
    serve_tracking,
    stop_tracking,
    tracking_server,
)
from ._state import (
    TrackingState,
    disable,
    enable,
    enabled,
    status,
)

__all__ = [
    "configure",
    "run",
    "tracking_uri",
    "artifact_root",
    "lineage_tags",
    "git_tags",
    "notebook_path",
    "log_dataset",
    "register",
    "promote",
    "list_models",
    "models",
    "ModelVersionInfo",
    "ModelVersions",
    "enabled",
    "enable",
    "disable",
    "status",
    "TrackingState",
    "serve_tracking",
    "stop_tracking",
    "tracking_server",
    "TrackingServer",
]
