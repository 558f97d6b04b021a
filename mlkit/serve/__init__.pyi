"""The public names of ``mlkit.serve``, for editors and type checkers.

``mlkit/serve/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

from ._batch import batch_predict
from ._docker import dockerfile
from ._lambda import lambda_package
from ._server import (
    Server,
    ServerList,
    get,
    list_servers,
    start,
    stop,
)

__all__ = [
    "Server",
    "ServerList",
    "start",
    "stop",
    "list_servers",
    "get",
    "batch_predict",
    "dockerfile",
    "lambda_package",
]
