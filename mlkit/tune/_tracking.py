"""MLflow for a study: one parent run per study, one nested child run per trial.

Children are written from the client, by one background thread, as trials finish: the SQLite
store behind mlkit's default tracking URI then has a single writer, and the driver never waits
for MLflow between trials. The parent run's id is kept in the study (a system attribute), so
continuing a study later continues its parent run instead of starting a second one.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.exceptions import TuneError
from mlkit.track._writer import FinishedRun, RunWriter, metric_key, write_finished
from mlkit.tune._progress import TrialRow

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    from optuna.trial import FrozenTrial, TrialState
else:
    FrozenTrial = require("optuna.trial").FrozenTrial
    TrialState = require("optuna.trial").TrialState

__all__ = ["StudyTracker", "best_model_uri", "best_model", "register_best"]

_log = logging.getLogger("mlkit.tune")

RUN_ID_ATTR = "mlkit.mlflow_run_id"
URI_ATTR = "mlkit.mlflow_tracking_uri"
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
_MAX_STEPS = 1000  # intermediate values logged per trial
_MAX_BATCH = 200  # trials written in one go by the writer thread
# How long the writer gathers finished trials before writing them. One run per transaction cost
# 5-9 ms of the client's CPU here, five per transaction 1.6 ms each, forty 0.8 ms each: on a
# small machine that CPU is taken from the workers (0.25 s trials ran 5 % slower tracked). A
# child run shows in MLflow up to this much later; the last ones are written as the call ends.
_LINGER_S = 1.0


def _ms(dt: Any) -> int | None:
    return int(dt.timestamp() * 1000) if dt is not None else None


class StudyTracker:
    """The MLflow side of one ``tune()`` call.

    Use as a context manager around the study: it opens (or resumes) the parent run, accepts
    finished trials with :meth:`log_trial`, and at exit drains the writer thread, records the
    best trial on the parent and ends it FINISHED / FAILED / KILLED.
    """

    def __init__(
        self,
        study: Any,
        *,
        experiment: str | None,
        storage_description: str,
        n_trials: int,
    ) -> None:
        self.study = study
        self.experiment = experiment
        self.storage_description = storage_description
        self.n_trials = n_trials
        self.run_id: str | None = None
        self.tracking_uri: str | None = None
        self.errors: list[str] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._best: float | None = None
        self._n_logged = 0
        # best_value's step is the count of finished trials: trials finish out of number order
        # on several workers, and MLflow's latest value is the one at the highest step.
        self._finished = 0

    # -- parent run ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def parent(self) -> Iterator[StudyTracker]:
        import mlflow

        from mlkit import track

        uri = track.configure(self.experiment)
        self.tracking_uri = uri
        attrs = self.study._storage.get_study_system_attrs(self.study._study_id)
        previous = attrs.get(RUN_ID_ATTR) if attrs.get(URI_ATTR) == uri else None
        if previous is not None and not _exists(mlflow, previous):
            previous = None
        directions = [d.name.lower() for d in self.study.directions]
        tags = {
            "mlkit.kind": "tune",
            "mlkit.study": self.study.study_name,
            "mlkit.n_trials_requested": str(self.n_trials),
        }
        if previous is not None:
            cm: Any = _resumed_run(mlflow, previous, tags)
        else:
            params = {
                "direction": ",".join(directions),
                "sampler": type(self.study.sampler).__name__,
                "pruner": type(self.study.pruner).__name__,
                "storage": self.storage_description,
            }
            cm = track.run(
                self.study.study_name,
                experiment=self.experiment,
                nested=mlflow.active_run() is not None,  # inside the user's own run: nest
                tags=tags,
                params=params,
            )
        with cm as run:
            self.run_id = run.info.run_id
            self._experiment_id = run.info.experiment_id
            if previous is None:
                storage = self.study._storage
                storage.set_study_system_attr(self.study._study_id, RUN_ID_ATTR, self.run_id)
                storage.set_study_system_attr(self.study._study_id, URI_ATTR, uri)
            self._best = self._initial_best()
            self._finished = _n_finished(self.study)
            self._thread = threading.Thread(
                target=self._writer, name="mlkit-tune-mlflow", daemon=True
            )
            self._thread.start()
            try:
                yield self
            finally:
                self._drain()
                self._log_best(mlflow)

    def _initial_best(self) -> float | None:
        if len(self.study.directions) > 1:
            return None
        try:
            return float(self.study.best_value)
        except ValueError:
            return None

    # -- children ------------------------------------------------------------------------------
    def log_trial(self, frozen: FrozenTrial, row: TrialRow) -> None:
        """Queue a finished trial's child run (written by the background thread)."""
        improved = False
        self._finished += 1
        if row.state == "COMPLETE" and row.value is not None and len(self.study.directions) == 1:
            maximize = self.study.directions[0].name == "MAXIMIZE"
            if self._best is None or (
                row.value > self._best if maximize else row.value < self._best
            ):
                self._best = row.value
                improved = True
        self._queue.put((frozen, row, (self._finished, self._best) if improved else None))

    def _writer(self) -> None:
        from mlflow import MlflowClient

        client = MlflowClient(self.tracking_uri)
        assert self.run_id is not None  # the writer starts once the parent run exists
        # The parent's best_value history is written when the queue runs dry: live in a slow
        # study, one batch for many improvements in a fast one (not one write each).
        self._parent = RunWriter(self.run_id, client=client)
        stop = False
        while not stop:
            # Every trial queued meanwhile goes into one write (one transaction on a SQL store):
            # a fast study's children cost a fraction of one MLflow run each.
            items = [self._queue.get()]
            deadline = time.monotonic() + _LINGER_S
            while len(items) < _MAX_BATCH and items[-1] is not None:  # None: the call ended
                left = deadline - time.monotonic()
                try:
                    items.append(self._queue.get(timeout=left) if left > 0
                                 else self._queue.get_nowait())
                except queue.Empty:
                    break
            trials = []
            for item in items:
                if item is None:
                    stop = True
                else:
                    trials.append(item)
            try:
                if trials:
                    write_finished(client, self._experiment_id,
                                   [self._child(frozen, row) for frozen, row, _ in trials])
                    self._n_logged += len(trials)
                for _, _, best in trials:
                    if best is not None:
                        step, value = best
                        self._parent.metric("best_value", value, step=step)
                if self._queue.empty():
                    self._parent.flush()
            except Exception as exc:  # MLflow trouble must not stop the study: report at the end
                numbers = ", ".join(str(t[0].number) for t in trials)
                self.errors.append(f"trial(s) {numbers}: {type(exc).__name__}: {exc}")
            finally:
                for _ in items:
                    self._queue.task_done()

    def _child(self, frozen: FrozenTrial, row: TrialRow) -> FinishedRun:
        """A finished trial as its child run: tags, params, values, timings, final state."""
        tags = {
            "mlflow.parentRunId": self.run_id,
            "mlkit.study": self.study.study_name,
            "mlkit.kind": "trial",
            "optuna.trial_number": str(frozen.number),
            "optuna.state": frozen.state.name,
            "mlkit.worker": row.worker or "",
        }
        if row.reason:
            tags["mlkit.fail_reason"] = row.reason
        for k, v in frozen.user_attrs.items():
            tags[f"user_attrs.{metric_key(k)}"] = v
        metrics: list[tuple[str, float, int]] = []
        if frozen.values is not None:
            if len(frozen.values) == 1:
                metrics.append(("value", frozen.values[0], 0))
            else:
                metrics += [(f"value_{i}", v, 0) for i, v in enumerate(frozen.values)]
        if frozen.duration is not None:
            metrics.append(("duration_s", frozen.duration.total_seconds(), 0))
        metrics.append(("objective_s", row.seconds, 0))
        for step, value in sorted(frozen.intermediate_values.items())[-_MAX_STEPS:]:
            metrics.append(("intermediate_value", value, step))
        status = (
            "KILLED" if "interrupted" in row.reason else _STATUS.get(frozen.state.name, "FAILED")
        )
        end = _ms(frozen.datetime_complete)
        return FinishedRun(
            run_name=f"trial-{frozen.number}", status=status,
            start_time=_ms(frozen.datetime_start), end_time=end,
            tags=tags, params=dict(frozen.params), metrics=metrics,
        )

    def _drain(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None
        if self.errors:
            _log.warning(
                "MLflow could not record %d trial run(s) of study %r; first: %s",
                len(self.errors),
                self.study.study_name,
                self.errors[0],
            )

    def _log_best(self, mlflow: Any) -> None:
        """Record the study's best trial (over all its trials, also earlier calls) on the parent."""
        assert self.run_id is not None  # called only for a study that opened its parent run
        parent = getattr(self, "_parent", None) or RunWriter(self.run_id, self.tracking_uri)
        client = parent.client
        trials = self.study.get_trials(deepcopy=False)
        counts = {s: sum(1 for t in trials if t.state == s) for s in TrialState}
        parent.tags({f"mlkit.n_{s.name.lower()}": str(n) for s, n in counts.items() if n})
        try:
            if len(self.study.directions) == 1:
                best = self.study.best_trial
                # at the last step, so it is the run's latest best_value
                parent.metric("best_value", best.value,
                              step=max(self._finished, _n_finished(self.study)))
                parent.tag("mlkit.best_trial", best.number)
                parent.tags({f"best.{metric_key(k)}": v for k, v in best.params.items()})
                if "model_uri" in best.user_attrs:
                    parent.tag("mlkit.best_model_uri", best.user_attrs["model_uri"])
                client.log_dict(
                    self.run_id,
                    {"number": best.number, "value": best.value, "params": best.params},
                    "best_trial.json",
                )
            else:
                front = [t.number for t in self.study.best_trials]
                parent.tag("mlkit.pareto_front", ",".join(map(str, front)))
        except ValueError:  # no COMPLETE trial yet
            pass
        parent.flush()  # one batch: the best_value history, counts and best params


def _n_finished(study: Any) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())


def _exists(mlflow: Any, run_id: str) -> bool:
    try:
        mlflow.MlflowClient().get_run(run_id)
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _resumed_run(mlflow: Any, run_id: str, tags: dict[str, str]) -> Iterator[Any]:
    """Reopen a study's parent run; it ends in a final state however the block exits."""
    active = mlflow.start_run(run_id=run_id, tags=tags)
    try:
        yield active
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


# -- registry hooks ------------------------------------------------------------------------------
def _pick(study: Any, trial: Any) -> FrozenTrial:
    if trial is not None:
        if isinstance(trial, int):
            matches = [t for t in study.get_trials(deepcopy=False) if t.number == trial]
            if not matches:
                raise TuneError(f"study {study.study_name!r} has no trial number {trial}")
            return matches[0]
        return trial
    if len(study.directions) > 1:
        raise TuneError(
            f"study {study.study_name!r} has several objectives, so there is no single best "
            "trial: pick one of study.best_trials and pass it as trial="
        )
    try:
        return study.best_trial
    except ValueError:
        raise TuneError(
            f"study {study.study_name!r} has no COMPLETE trial yet: run mlkit.tune.tune() first"
        ) from None


def best_model_uri(study: Any, trial: Any = None) -> str:
    """The MLflow model URI the best trial stored in ``trial.user_attrs["model_uri"]``.

    Parameters
    ----------
    study : optuna.Study
        A study run by :func:`mlkit.tune.tune` (or any Optuna study).
    trial : int or FrozenTrial, optional
        Another trial than the best (required for multi-objective studies).

    Examples
    --------
    >>> uri = mlkit.tune.best_model_uri(study)   # doctest: +SKIP
    """
    t = _pick(study, trial)
    uri = t.user_attrs.get("model_uri")
    if not uri:
        raise TuneError(
            f"trial {t.number} of study {study.study_name!r} stored no model: in the objective, "
            "log the model and keep its URI with trial.set_user_attr('model_uri', uri) "
            "(e.g. uri = mlkit.train.xgboost(...).log_model())"
        )
    return str(uri)


def best_model(study: Any, trial: Any = None) -> Any:
    """Load the best trial's model (an MLflow pyfunc model).

    Examples
    --------
    >>> model = mlkit.tune.best_model(study)     # doctest: +SKIP
    >>> model.predict(df)                        # doctest: +SKIP
    """
    import mlflow.pyfunc

    from mlkit import track

    uri = best_model_uri(study, trial)
    track.configure()
    return mlflow.pyfunc.load_model(uri)


def register_best(study: Any, name: str, trial: Any = None, alias: str | None = "candidate") -> Any:
    """Register the best trial's model in the MLflow model registry under ``name``.

    The new version is tagged with the study name, trial number and value, and ``alias`` points
    at it (``mlkit.track.register``).

    Examples
    --------
    >>> v = mlkit.tune.register_best(study, "churn")    # doctest: +SKIP
    >>> v.version                                      # doctest: +SKIP
    1
    """
    from mlkit import track

    if not isinstance(name, str) or not name.strip():
        raise TuneError(f"name must be a non-empty model name, but got {name!r}")
    t = _pick(study, trial)
    uri = best_model_uri(study, t)
    tags = {"mlkit.study": study.study_name, "mlkit.trial": str(t.number)}
    if t.values is not None and len(t.values) == 1:
        tags["mlkit.value"] = str(t.values[0])
    track.configure()
    if "register" in track.__all__:
        return track.register(uri, name, alias=alias, tags=tags)
    import mlflow  # pragma: no cover - an mlkit.track without a registry helper

    return mlflow.register_model(uri, name, tags=tags)
