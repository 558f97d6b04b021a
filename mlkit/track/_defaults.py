"""Tracking defaults: a SQLite store under the mlkit home unless MLFLOW_TRACKING_URI is set.

The store is ``<mlkit home>/mlflow/mlflow.db`` with artifacts beside it in
``<mlkit home>/mlflow/artifacts``. It is prepared for many writer processes (schema created once,
WAL journal mode: see :mod:`mlkit.track._store`), so Dask workers can log into it at once.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlkit import config
from mlkit._imports import require
from mlkit.exceptions import ConfigError, TrackingError
from mlkit.track import _state, _store

__all__ = ["tracking_uri", "default_uri", "artifact_root", "configure", "run"]

# The URI this process last pointed MLflow at: when it changes (a new MLKIT_HOME), MLflow's
# remembered active experiment id belongs to the old store and must be forgotten.
_LAST_URI: str | None = None


def tracking_uri() -> str:
    """The tracking URI mlkit uses: ``MLFLOW_TRACKING_URI`` if set, else SQLite in the home.

    Examples
    --------
    >>> tracking_uri().startswith(("sqlite:///", "http", "file:", "postgresql", "databricks"))
    True
    """
    import os

    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    config.home("mlflow")  # made here, so MLflow finds the store's folder
    return default_uri()


def default_uri() -> str:
    """mlkit's own store for this home: ``sqlite:///<home>/mlflow/mlflow.db``.

    (MLflow copies whatever URI it is pointed at into ``MLFLOW_TRACKING_URI``, so that variable
    holding this value means mlkit's default, not a store the user chose.)

    Examples
    --------
    >>> default_uri().startswith("sqlite:///") and default_uri().endswith("mlflow.db")
    True
    """
    return f"sqlite:///{config.home_path() / 'mlflow' / 'mlflow.db'}"


def artifact_root() -> str:
    """Where runs of experiments mlkit creates keep their artifacts (beside the SQLite store).

    Examples
    --------
    >>> artifact_root().startswith("file://")
    True
    """
    return (config.home("mlflow") / "artifacts").as_uri()


def _check_name(what: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{what} must be a non-empty string, but got {value!r}")


def configure(experiment: str | None = None, *, uri: str | None = None) -> str:
    """Point MLflow at mlkit's store (and optionally an experiment); returns the tracking URI.

    Parameters
    ----------
    experiment : str, optional
        Experiment to make active; created (artifacts beside a SQLite store) if missing. Default:
        the one chosen with ``%mlscale track on --experiment``, else MLflow's active one.
    uri : str, optional
        Tracking URI to use instead of :func:`tracking_uri`. Tasks on Dask workers must pass the
        client's URI here: workers do not see the client's later environment changes.

    Examples
    --------
    >>> uri = configure("demo")                                   # doctest: +SKIP
    >>> configure("demo", uri="sqlite:////data/mlflow.db")        # doctest: +SKIP
    'sqlite:////data/mlflow.db'
    """
    global _LAST_URI
    _check_name("experiment", experiment)
    _check_name("uri", uri)
    mlflow = require("mlflow")
    quiet_artifact_bars()
    uri = uri or tracking_uri()
    try:
        _store.prepare(uri)
    except Exception as exc:
        raise TrackingError(f"cannot open the MLflow store {uri}: {exc}") from exc
    mlflow.set_tracking_uri(uri)
    changed, _LAST_URI = _LAST_URI is not None and _LAST_URI != uri, uri
    name = experiment or _state.active_experiment()
    if name is not None:
        _activate(mlflow, uri, name)
    elif changed:
        # MLflow keeps the active experiment id in a global; after a switch of store it may not
        # exist there. Its "Default" experiment (id "0") always does.
        with contextlib.suppress(Exception):
            mlflow.set_experiment(experiment_id="0")
    return uri


def quiet_artifact_bars() -> None:
    """In a notebook, turn MLflow's own artifact upload/download bars off unless the user chose.

    They are tqdm widgets: a saved notebook (or one papermill wrote) keeps only their first
    frame, "Downloading artifacts: 0%", or "Error displaying widget"; mlkit's calls show their
    own progress, which ends static. ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=true`` keeps them.

    Examples
    --------
    >>> quiet_artifact_bars()   # outside a kernel: nothing changes
    """
    from mlkit._display import in_kernel

    if in_kernel():
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _activate(mlflow: Any, uri: str, name: str) -> None:
    client = mlflow.MlflowClient(uri)
    exp = _store.retry_locked(client.get_experiment_by_name, name)
    if exp is None:
        kwargs: dict[str, Any] = {}
        root = _store.artifact_root_for(uri)
        if root is not None:
            # A folder name per experiment; its runs live in their own sub-folders, so two names
            # mapping to the same folder cannot collide.
            kwargs["artifact_location"] = f"{root}/{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}"
        try:
            _store.retry_locked(client.create_experiment, name, **kwargs)
        except Exception as exc:  # created by another process in the meantime is fine
            if client.get_experiment_by_name(name) is None:
                raise TrackingError(f"cannot create experiment {name!r} in {uri}: {exc}") from exc
    elif exp.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {name!r} was deleted; restore it (mlflow experiments restore "
            f"--experiment-id {exp.experiment_id}) or choose another name"
        )
    mlflow.set_experiment(name)


def _check_mapping(what: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a dict of name -> value, but got {type(value).__name__}")
    bad = [k for k in value if not isinstance(k, str) or not k]
    if bad:
        raise ConfigError(f"{what} names must be non-empty strings, but got {bad!r}")
    return dict(value)


@contextlib.contextmanager
def run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    nested: bool | None = None,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    uri: str | None = None,
    auto: bool = False,
    lineage: bool = True,
) -> Iterator[Any]:
    """Start an MLflow run, with lineage tags, that always ends in a final state.

    A normal exit marks it FINISHED, an exception FAILED, an interrupt (KeyboardInterrupt, the
    notebook's stop button) KILLED: never a run left RUNNING. Runs the body opened and left open
    are ended with the same status.

    Parameters
    ----------
    name : str, optional
        Run name.
    experiment : str, optional
        Experiment (created if missing); see :func:`configure`.
    nested : bool, optional
        Open as a child of the active run. Default: nest when a run is active.
    tags, params : dict, optional
        Extra tags (override lineage tags of the same key) and parameters to log.
    uri : str, optional
        Tracking URI (pass the client's from inside a Dask task); see :func:`configure`.
    auto : bool
        Set by mlkit's own APIs for the runs they open unasked: while tracking is off
        (``%mlscale track off``) such a run is skipped and the block receives ``None``.
    lineage : bool
        Add :func:`~mlkit.track.lineage_tags` (git, notebook, versions, cluster). Default True.

    Yields
    ------
    mlflow.ActiveRun or None
        The run (None only for ``auto=True`` while tracking is off).

    Examples
    --------
    >>> import mlflow, mlkit
    >>> with mlkit.track.run("train", params={"lr": 0.1}) as r:      # doctest: +SKIP
    ...     mlflow.log_metric("loss", 0.5)
    >>> mlflow.get_run(r.info.run_id).info.status                      # doctest: +SKIP
    'FINISHED'
    """
    if auto and not _state.enabled():
        yield None
        return
    _check_name("name", name)
    tags = _check_mapping("tags", tags)
    params = _check_mapping("params", params)
    mlflow = require("mlflow")
    configure(experiment, uri=uri)
    parent = mlflow.active_run()
    if nested is False and parent is not None:
        raise TrackingError(
            f"run {parent.info.run_id} is still active: end it first, or pass nested=True to "
            "open this run as its child"
        )
    from mlkit.track._lineage import lineage_tags
    from mlkit.track._writer import RunWriter, tag_text

    # Values cut to MLflow's tag limit in the one place that knows it (the writer).
    all_tags = {
        k: tag_text(v) for k, v in {**(lineage_tags() if lineage else {}), **tags}.items()
    }
    active = _store.retry_locked(
        mlflow.start_run, run_name=name, nested=parent is not None, tags=all_tags
    )
    status = "FAILED"
    try:
        if params:
            writer = RunWriter(active.info.run_id, mlflow.get_tracking_uri())
            writer.params(params)
            writer.flush()
        yield active
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _finish(mlflow, parent.info.run_id if parent is not None else None, status)


def _finish(mlflow: Any, parent_id: str | None, status: str) -> None:
    """End every run above ``parent_id`` on MLflow's stack (ours and any the body left open)."""
    while True:
        top = mlflow.active_run()
        if top is None or top.info.run_id == parent_id:
            return
        _store.retry_locked(mlflow.end_run, status=status)
