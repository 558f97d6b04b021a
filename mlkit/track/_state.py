"""Tracking on/off for this process (kernel): what ``%mlscale track on|off`` switches.

Semantics
---------
* **on** (the default): mlkit's own APIs (training, tuning, jobs...) open an MLflow run for their
  work (``mlkit.track.run(..., auto=True)``), with lineage tags, in the experiment chosen by
  ``track on --experiment NAME`` (else MLflow's active experiment).
* **off**: those automatic runs are skipped (``run(..., auto=True)`` yields ``None``). Runs you
  open yourself with ``mlkit.track.run(...)`` or ``mlflow.start_run()`` are still recorded:
  "off" never silently drops a run you asked for. It does not touch ``mlflow.autolog``.

The switch lives in this process only; tasks on Dask workers receive the tracking URI and
experiment from the client explicitly. ``MLKIT_TRACK=0`` in the environment starts a process
with tracking off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlkit.exceptions import ConfigError

__all__ = ["TrackingState", "enabled", "enable", "disable", "status", "active_experiment"]

_ENABLED: bool | None = None  # None: not switched in this process; MLKIT_TRACK decides
_EXPERIMENT: str | None = None


@dataclass(frozen=True)
class TrackingState:
    """Whether mlkit records its runs automatically, where, and into which experiment.

    Examples
    --------
    >>> print(TrackingState(True, "churn", "sqlite:////tmp/h/mlflow/mlflow.db"))
    tracking on: experiment 'churn' in sqlite:////tmp/h/mlflow/mlflow.db
    """

    enabled: bool
    experiment: str | None
    uri: str

    def __str__(self) -> str:
        if not self.enabled:
            return f"tracking off: mlkit opens no runs by itself (store: {self.uri})"
        where = (
            f"experiment {self.experiment!r}" if self.experiment else "MLflow's active experiment"
        )
        return f"tracking on: {where} in {self.uri}"

    def _repr_pretty_(self, p: object, cycle: bool) -> None:
        p.text(str(self))  # type: ignore[attr-defined]


def _env_default() -> bool:
    raw = os.environ.get("MLKIT_TRACK", "1").strip().lower()
    if raw in ("1", "true", "yes", "on", ""):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"MLKIT_TRACK must be 1 or 0 (on/off), but got {raw!r}")


def enabled() -> bool:
    """True when mlkit's APIs record their runs automatically.

    Examples
    --------
    >>> isinstance(enabled(), bool)
    True
    """
    return _env_default() if _ENABLED is None else _ENABLED


def active_experiment() -> str | None:
    """The experiment chosen with :func:`enable` (``%mlscale track on --experiment``), if any.

    Examples
    --------
    >>> active_experiment() is None or isinstance(active_experiment(), str)
    True
    """
    return _EXPERIMENT


def enable(experiment: str | None = None) -> TrackingState:
    """Turn automatic runs on, optionally into ``experiment`` (created if missing).

    Parameters
    ----------
    experiment : str, optional
        Experiment for every run mlkit opens from now on (keeps the previous choice if omitted).

    Examples
    --------
    >>> import mlkit
    >>> mlkit.track.enable("churn")            # doctest: +SKIP
    tracking on: experiment 'churn' in sqlite:///.../mlflow.db
    """
    global _ENABLED, _EXPERIMENT
    from mlkit.track._defaults import configure

    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise ConfigError(f"experiment must be a non-empty name, but got {experiment!r}")
    chosen = experiment if experiment is not None else _EXPERIMENT
    uri = configure(chosen)  # validates and creates the experiment before the switch flips
    _ENABLED, _EXPERIMENT = True, chosen
    return TrackingState(True, chosen, uri)


def disable() -> TrackingState:
    """Turn automatic runs off (runs you open yourself are still recorded).

    Examples
    --------
    >>> import mlkit
    >>> mlkit.track.disable()                  # doctest: +SKIP
    tracking off: mlkit opens no runs by itself (store: sqlite:///.../mlflow.db)
    """
    global _ENABLED
    from mlkit.track._defaults import tracking_uri

    _ENABLED = False
    return TrackingState(False, _EXPERIMENT, tracking_uri())


def status() -> TrackingState:
    """The current switch, experiment and tracking URI.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.track.status().enabled           # doctest: +SKIP
    True
    """
    from mlkit.track._defaults import tracking_uri

    return TrackingState(enabled(), _EXPERIMENT, tracking_uri())


def _reset() -> None:
    """Back to the process default (tests)."""
    global _ENABLED, _EXPERIMENT
    _ENABLED, _EXPERIMENT = None, None
