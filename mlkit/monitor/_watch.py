"""The feedback loop: check a served model's live traffic for drift on a schedule.

``watch`` checks the prediction log of a served model against its reference every ``every``
and calls ``on_drift(report)`` when the traffic has drifted (e.g. to launch a retraining job).
It runs on a daemon thread (the notebook stays usable) or in the foreground (a script or a
service; Ctrl-C stops it). For cron, the ``mlkit monitor`` command does one check and exits 1 on
drift.
"""

from __future__ import annotations

import collections
import datetime as _dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlkit import _args
from mlkit.exceptions import ConfigArgumentError, ConfigError, NoClusterError, NoPredictionsError
from mlkit.monitor._logs import _check_name, parse_duration, predictions, reference_for
from mlkit.monitor._profile import ReferenceProfile, load_profile, reference_profile

if TYPE_CHECKING:
    from mlkit.monitor._report import DriftReport

__all__ = ["watch", "Watcher", "check", "live_frame"]

_log = logging.getLogger("mlkit.monitor")


def live_frame(name: Any, since: Any, client: Any = None) -> Any:
    """The log window to check: a dask frame on the cluster if one is running, else pandas.

    Prediction logs of one window are usually small; without a cluster they are read into this
    process with dask's local threads rather than failing.
    """
    ddf = predictions(name, since=since)
    if client is not None:
        return ddf
    from mlkit.cluster import get_client

    try:
        get_client()
    except NoClusterError:
        return ddf.compute(scheduler="threads")
    return ddf


def _resolve_reference(name: str, reference: Any) -> ReferenceProfile:
    if reference is None:
        return reference_for(name)
    if isinstance(reference, ReferenceProfile):
        return reference
    if isinstance(reference, str) or hasattr(reference, "__fspath__"):
        return load_profile(reference)
    # A DataFrame: profile it once so every check scans only the live traffic.
    return reference_profile(reference)


def check(
    model: Any,
    since: Any = "1h",
    reference: Any = None,
    *,
    features: Sequence[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    client: Any = None,
    progress: bool | None = None,
) -> DriftReport | None:
    """One drift check of a served model's live traffic against its reference.

    What ``mlkit monitor MODEL`` and ``%mlscale monitor MODEL`` run.

    Parameters
    ----------
    model : str or served-model handle
        The server's name (its prediction log is read, see :func:`predictions`).
    since : str, timedelta or datetime
        Window of traffic to check.
    reference : profile, DataFrame, JSON path or MLflow URI, optional
        Default: the reference registered with :func:`register_reference`.
    features, thresholds, client, progress
        As for :func:`drift`.

    Returns
    -------
    DriftReport or None
        None when the window holds no prediction.

    Examples
    --------
    >>> report = mlkit.monitor.check("churn", since="1h")   # doctest: +SKIP
    """
    from mlkit.monitor._drift import check_thresholds, drift

    name = _check_name(model)
    check_thresholds(thresholds)
    profile = _resolve_reference(name, reference)
    try:
        current = live_frame(name, since, client)
    except NoPredictionsError as exc:
        _log.info("mlkit.monitor.check(%r): %s", name, exc)
        return None
    return drift(profile, current, features=features, thresholds=thresholds, client=client,
                 progress=progress)


class Watcher:
    """A drift check of one served model, repeated every ``every``.

    Use :func:`watch` to create one. ``reports`` keeps the latest reports (``None`` entries are
    windows without traffic), ``errors`` the exceptions raised by checks or by ``on_drift``.

    Examples
    --------
    >>> w = mlkit.monitor.watch("churn", every="1h", on_drift=retrain)   # doctest: +SKIP
    >>> w.last_report                                                   # doctest: +SKIP
    >>> w.stop()                                                        # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        profile: ReferenceProfile,
        *,
        every: _dt.timedelta,
        since: Any,
        on_drift: Callable[[Any], Any] | None,
        features: Sequence[str] | None,
        thresholds: Mapping[str, Any] | None,
        max_checks: int | None,
        log_to_mlflow: bool,
        client: Any,
    ) -> None:
        self.name = name
        self.profile = profile
        self.every = every
        self.since = since
        self.on_drift = on_drift
        self.features = features
        self.thresholds = thresholds
        self.max_checks = max_checks
        self.log_to_mlflow = log_to_mlflow
        self.client = client
        self.checks = 0
        self.drift_events = 0
        self.reports: collections.deque[Any] = collections.deque(maxlen=100)
        self.errors: collections.deque[BaseException] = collections.deque(maxlen=100)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def last_report(self) -> Any:
        """The latest drift report (None before the first check or if its window was empty)."""
        return self.reports[-1] if self.reports else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def check(self, raise_errors: bool = True) -> Any:
        """One drift check now; calls ``on_drift`` on drift. Returns the report (None: no
        prediction in the window)."""
        from mlkit.monitor._drift import drift

        self.checks += 1
        try:
            current = live_frame(self.name, self.since, self.client)
        except NoPredictionsError as exc:
            _log.info("mlkit.monitor.watch(%r): %s", self.name, exc)
            self.reports.append(None)
            return None
        try:
            report = drift(self.profile, current, features=self.features,
                           thresholds=self.thresholds, client=self.client, progress=False)
            self.reports.append(report)
            if self.log_to_mlflow:
                report.log()
            if report.drifted:
                self.drift_events += 1
                if self.on_drift is not None:
                    self.on_drift(report)
        except Exception as exc:
            self.errors.append(exc)
            if raise_errors:
                raise
            _log.exception("mlkit.monitor.watch(%r): check failed", self.name)
            return None
        return report

    def _done(self) -> bool:
        return self._stop.is_set() or (
            self.max_checks is not None and self.checks >= self.max_checks
        )

    def run(self) -> Watcher:
        """Check now and then every ``every`` until stopped, ``max_checks`` reached or Ctrl-C."""
        try:
            while not self._done():
                self.check(raise_errors=False)
                if self._done() or self._stop.wait(self.every.total_seconds()):
                    break
        except KeyboardInterrupt:
            _log.info("mlkit.monitor.watch(%r): interrupted", self.name)
        return self

    def start(self) -> Watcher:
        """Run :meth:`run` on a daemon thread (no-op when already running)."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"mlkit-watch-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the loop (a check in progress finishes first)."""
        self._stop.set()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background loop to end; True if it has."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self.running

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"<Watcher {self.name!r} every {self.every} {state}: {self.checks} checks, "
                f"{self.drift_events} with drift, {len(self.errors)} errors>")


def watch(
    model: Any,
    every: Any = "1h",
    on_drift: Callable[[Any], Any] | None = None,
    *,
    reference: Any = None,
    since: Any = None,
    features: Sequence[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    once: bool = False,
    max_checks: int | None = None,
    background: bool = True,
    log: bool = False,
    client: Any = None,
) -> Watcher:
    """Check a served model's live traffic for drift every ``every``; act when it drifts.

    Parameters
    ----------
    model : str or served-model handle
        The server's name; its prediction log (``log_predictions=True``) is what is checked.
    every : str, timedelta or seconds
        Interval between checks: ``"1h"``, ``"15m"``, ``"30s"`` ...
    on_drift : callable, optional
        Called with the :class:`DriftReport` when a check finds drift (e.g. start retraining
        with ``mlkit.jobs.run("retrain.ipynb")``).
    reference : profile, DataFrame, JSON path or MLflow URI, optional
        Default: the one registered with :func:`register_reference`. A DataFrame is profiled
        once, up front.
    since : str or timedelta, optional
        Window of traffic each check looks at; default ``every``.
    features, thresholds
        Passed to :func:`drift`.
    once : bool
        Do a single check now, in this thread (errors raise), and return.
    max_checks : int, optional
        Stop after this many checks (default: until :meth:`Watcher.stop`).
    background : bool
        Run on a daemon thread (default) or block in this thread until done or Ctrl-C.
    log : bool
        Log every report to MLflow (a ``drift-report`` run each).
    client : distributed.Client, optional
        Cluster to scan on; default the mlkit cluster if one runs, else in this process.

    Returns
    -------
    Watcher

    Examples
    --------
    >>> def retrain(report):
    ...     mlkit.jobs.run("retrain.ipynb")
    >>> w = mlkit.monitor.watch("churn", every="1h", on_drift=retrain)   # doctest: +SKIP
    >>> w.stop()                                                        # doctest: +SKIP
    """
    name = _check_name(model)
    interval = parse_duration(every, "every")
    window = parse_duration(since, "since") if since is not None else interval
    if on_drift is not None and not callable(on_drift):
        raise ConfigError(f"on_drift must be callable, but got {on_drift!r}")
    if max_checks is not None:
        _args.positive_int("max_checks", max_checks, error=ConfigArgumentError)
    from mlkit.monitor._drift import check_thresholds

    check_thresholds(thresholds)
    profile = _resolve_reference(name, reference)
    w = Watcher(
        name, profile, every=interval, since=window, on_drift=on_drift, features=features,
        thresholds=thresholds, max_checks=1 if once else max_checks, log_to_mlflow=log,
        client=client,
    )
    if once:
        w.check(raise_errors=True)
        return w
    return w.start() if background else w.run()
