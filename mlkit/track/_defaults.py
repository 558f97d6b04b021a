"""Tracking defaults: a SQLite store under the mlkit home unless MLFLOW_TRACKING_URI is set."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from mlkit import config
from mlkit._imports import require

__all__ = ["tracking_uri", "configure", "run"]


def tracking_uri() -> str:
    """The tracking URI mlkit uses: ``MLFLOW_TRACKING_URI`` if set, else SQLite in the home.

    Examples
    --------
    >>> tracking_uri().startswith(("sqlite:///", "http", "file:", "postgresql", "mysql"))
    True
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{config.home('mlflow') / 'mlflow.db'}"


def artifact_root() -> str:
    """Where runs of experiments mlkit creates keep their artifacts (beside the SQLite store)."""
    return (config.home("mlflow") / "artifacts").as_uri()


def configure(experiment: str | None = None) -> str:
    """Point MLflow at mlkit's store (and optionally an experiment); returns the tracking URI.

    Parameters
    ----------
    experiment : str, optional
        Experiment to make active; created with its artifacts under the mlkit home if missing.

    Examples
    --------
    >>> uri = configure("demo")   # doctest: +SKIP
    """
    mlflow = require("mlflow")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if experiment is not None:
        client = mlflow.MlflowClient(uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            kwargs: dict[str, Any] = {}
            if uri.startswith("sqlite:"):
                kwargs["artifact_location"] = f"{artifact_root()}/{experiment}"
            with contextlib.suppress(Exception):  # created concurrently by another process
                client.create_experiment(experiment, **kwargs)
        mlflow.set_experiment(experiment)
    return uri


@contextlib.contextmanager
def run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    nested: bool = False,
    tags: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """Start an MLflow run that always ends in a final state.

    An exception marks it FAILED, an interrupt (KeyboardInterrupt) KILLED, a normal exit
    FINISHED: never a run left RUNNING.

    Examples
    --------
    >>> with run("train", params={"lr": 0.1}) as r:    # doctest: +SKIP
    ...     mlflow.log_metric("loss", 0.5)
    """
    mlflow = require("mlflow")
    configure(experiment)
    active = mlflow.start_run(run_name=name, nested=nested, tags=tags)
    try:
        if params:
            mlflow.log_params(params)
        yield active
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")
