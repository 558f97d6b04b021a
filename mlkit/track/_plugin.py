"""Hand the tracking server's address and credentials to every worker, now and later.

A Dask ``WorkerPlugin`` registered on the scheduler: it runs ``setup`` on every worker that is
there and on every worker that joins later, so a scaled-up or restarted worker logs into the
same server. Its ``teardown`` (when mlkit stops the server) puts the worker's environment back.

The plugin travels over the cluster's own comms: on a cluster without TLS the password crosses
the network as plainly as the data does (see ``distributed``'s TLS security options).
"""

from __future__ import annotations

import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["TrackingEnv", "NAME"]

NAME = "mlkit-tracking"
# An experiment id of the store the worker used before names nothing (or the wrong experiment)
# in the server's store; MLflow would still use it for runs opened with raw mlflow calls.
_STALE = ("MLFLOW_EXPERIMENT_ID",)


class TrackingEnv(WorkerPlugin):
    """Set ``MLFLOW_TRACKING_URI`` (and the basic-auth username/password) on each worker.

    Examples
    --------
    >>> env = {"MLFLOW_TRACKING_URI": "http://10.0.0.5:5000"}
    >>> client.register_plugin(TrackingEnv(env), name=NAME)  # doctest: +SKIP
    """

    name = NAME
    idempotent = False  # a new server (new URL or password) replaces the old plugin

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self._before: dict[str, str | None] = {}

    def setup(self, worker: Any) -> None:
        self._before = {k: os.environ.get(k) for k in (*self.env, *_STALE)}
        for key in _STALE:
            os.environ.pop(key, None)
        os.environ.update(self.env)
        _forget_mlflow_uri()

    def teardown(self, worker: Any) -> None:
        for key, value in self._before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _forget_mlflow_uri()


def _forget_mlflow_uri() -> None:
    # A task that called mlflow.set_tracking_uri(...) before left MLflow pointing elsewhere; the
    # environment is what mlkit.track reads, so let MLflow read it again too.
    import sys

    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        try:
            from mlflow.tracking._tracking_service import utils

            utils._tracking_uri = None
        except Exception:  # an MLflow without that private global: set_tracking_uri stays
            pass
