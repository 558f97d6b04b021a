"""One trial, run where the objective runs: a Dask worker (or a thread of the client).

The driver creates each trial in the shared storage (so it always knows which trial a task
holds, and can fail it if the task is lost) and sends a :class:`TrialJob`. The task rebuilds
the study around that trial, runs the objective, and tells the result to the storage itself, so
a finished trial is recorded even if its result never makes it back to the driver.

The sampler runs here, not on the client: Optuna samples parameters lazily, inside
``trial.suggest_*``. Every task gets its own copy of the sampler, reseeded from the trial number,
so copies of a seeded sampler do not all suggest the same values, and a seeded random search
gives the same parameters for the same trial number however the trials were scheduled.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from mlkit._imports import require
from mlkit._source import SourceMap, format_exc
from mlkit.tune._storage import StorageSpec, open_storage

# Engines are optional extras: require() names the extra to install when one is missing.
cloudpickle = require("cloudpickle")
np = require("numpy")
optuna = require("optuna")
UpdateFinishedTrialError = require("optuna.exceptions").UpdateFinishedTrialError
FrozenTrial = require("optuna.trial").FrozenTrial
TrialState = require("optuna.trial").TrialState

__all__ = ["TrialJob", "Payload", "Outcome", "run_trial", "WORKER_ATTR", "REASON_ATTR"]

WORKER_ATTR = "mlkit.worker"  # set when a task starts the trial: who ran it (and that it started)
REASON_ATTR = "fail_reason"  # why a trial failed (the key Optuna itself once used)
TRACEBACK_ATTR = "mlkit.traceback"
RETRY_ATTR = "mlkit.retry_of"
_TRACEBACK_CHARS = 4000


@dataclass
class Payload:
    """What every trial of one ``tune()`` call shares; sent pickled, unpickled once per process."""

    study_name: str
    storage: StorageSpec
    objective: Any
    sampler: Any
    pruner: Any
    catch: tuple[type[BaseException], ...]
    environment: dict[str, str] = field(default_factory=dict)
    # where the objective's code came from, so a worker's traceback shows the user's lines
    sources: SourceMap | None = None
    # What the driver knows of the study already (set once it exists): a task builds its
    # optuna.Study from these instead of asking the storage again for each trial.
    study_id: int | None = None
    directions: tuple[Any, ...] = ()


@dataclass(frozen=True)
class TrialJob:
    """One trial to run: which payload (by token) and the trial the driver created."""

    token: str
    trial_id: int
    number: int


@dataclass
class Outcome:
    """What a task reports back.

    ``kind`` is ``"finished"`` (COMPLETE, PRUNED or FAIL told by the task), ``"lost"`` (an
    earlier attempt died with its worker; this task only marked the trial FAIL) or
    ``"raised"`` (the objective raised an exception not in ``catch``: ``error`` holds it) or
    ``"taken"`` (another optimizer of the study started this WAITING trial first).
    ``trial`` is None when the task told the trial itself: the driver reads the finished trial
    from the storage (it waits for results anyway), so the worker starts its next trial one
    storage round trip sooner.
    """

    kind: str
    trial: FrozenTrial | None
    worker: str
    seconds: float = 0.0
    error: BaseException | None = None


_PAYLOADS: OrderedDict[str, Payload] = OrderedDict()
_PAYLOAD_LOCK = threading.Lock()


def _payload(job: TrialJob, blob: bytes) -> Payload:
    with _PAYLOAD_LOCK:
        p = _PAYLOADS.get(job.token)
        if p is None:
            p = cloudpickle.loads(blob)
            _PAYLOADS[job.token] = p
            while len(_PAYLOADS) > 8:
                _PAYLOADS.popitem(last=False)
        return p


def remember_payload(token: str, payload: Payload) -> None:
    """Use ``payload`` itself (not an unpickled copy) for trials run in this process: with
    ``on="client"`` an in-memory storage must be the very object the driver reads."""
    with _PAYLOAD_LOCK:
        _PAYLOADS[token] = payload


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "client"


def _in_worker() -> bool:
    return _worker_name() != "client"


def reseeded(sampler: Any, number: int) -> Any:
    """A copy of ``sampler`` whose random streams depend on its seed and the trial number."""
    s = copy.deepcopy(sampler)
    try:
        # Private, but the only handle on a sampler's RNG; reseed_rng() below is the fallback.
        from optuna.samplers._lazy_random_state import LazyRandomState
    except ImportError:  # pragma: no cover - a future Optuna moved it
        s.reseed_rng()
        return s
    found = False
    seen: set[int] = set()

    def walk(obj: Any) -> None:
        nonlocal found
        if id(obj) in seen or not hasattr(obj, "__dict__"):
            return
        seen.add(id(obj))
        for value in vars(obj).values():
            if isinstance(value, LazyRandomState):
                found = True
                if value._rng is not None:  # seeded: derive this trial's stream from the seed
                    base = int(value._rng.randint(2**31 - 1))
                    value._rng.seed(
                        int(np.random.SeedSequence([base, number]).generate_state(1)[0])
                    )
                # unseeded (None): every copy seeds itself from OS entropy on first use
            elif isinstance(value, optuna.samplers.BaseSampler):
                walk(value)

    walk(s)
    if not found:
        s.reseed_rng()
    return s


def _apply_environment(env: dict[str, str]) -> None:
    """Let mlkit/MLflow code in the objective use the client's home and tracking store.

    Workers do not see environment changes made after they started, so the client sends them.
    """
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
    uri = env.get("MLFLOW_TRACKING_URI")
    if uri and "mlflow" in sys.modules:
        sys.modules["mlflow"].set_tracking_uri(uri)


def _fail(storage: Any, trial_id: int, reason: str, tb: str | None = None) -> None:
    """Mark a running trial FAIL with its reason; a no-op if it already finished."""
    try:
        storage.set_trial_system_attr(trial_id, REASON_ATTR, reason)
        if tb:
            storage.set_trial_system_attr(trial_id, TRACEBACK_ATTR, tb[-_TRACEBACK_CHARS:])
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        pass


def _picklable(exc: BaseException) -> BaseException:
    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class _KnownStudy:
    """The storage, answering the two questions ``optuna.Study()`` asks about the study itself
    (its id and directions, fixed once it exists) from what the driver sent.

    Over a DaskStorage every storage call is a round trip to the scheduler, made between two
    trials on the worker: 13 per trial before, and these two never change during a study.
    """

    def __init__(self, storage: Any, name: str, study_id: int, directions: tuple[Any, ...]):
        self._storage = storage
        self._name = name
        self._id = study_id
        self._directions = list(directions)

    def get_study_id_from_name(self, study_name: str) -> int:
        if study_name == self._name:
            return self._id
        return int(self._storage.get_study_id_from_name(study_name))

    def get_study_directions(self, study_id: int) -> list[Any]:
        if study_id == self._id:
            return list(self._directions)
        return list(self._storage.get_study_directions(study_id))

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found on this object. While unpickling (the objective may
        # send its trial, hence its study, to the workers of a torch job) _storage is not set
        # yet and pickle looks up __setstate__: no delegation then.
        if name.startswith("__") or "_storage" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self._storage, name)


def _study_storage(p: Payload, storage: Any) -> Any:
    # get_storage wraps an RDBStorage in Optuna's _CachedStorage, as optuna.Study would.
    storage = optuna.storages.get_storage(storage)
    if p.study_id is None or not p.directions:
        return storage
    return _KnownStudy(storage, p.study_name, p.study_id, p.directions)


def _start(storage: Any, job: TrialJob, worker: str) -> Outcome | None:
    """Turn the WAITING trial RUNNING for this task; an Outcome when it is not ours to run.

    The common case costs one storage write and no read: only when the trial is not WAITING
    any more is it read, to tell why.
    """
    try:
        # Optuna stamps its datetime_start now. False: it is no longer WAITING.
        if storage.set_trial_state_values(job.trial_id, state=TrialState.RUNNING):
            return None
    except UpdateFinishedTrialError:
        pass  # finished already: read below who finished it
    frozen = storage.get_trial(job.trial_id)
    previous = frozen.system_attrs.get(WORKER_ATTR)
    if previous is None:
        # Never started by an mlkit task, yet no longer WAITING: another optimizer of the study
        # (Optuna's ask pops WAITING trials) runs or ran it, or the driver, stopping the study,
        # failed it. Not ours to run, nor to count.
        return Outcome("taken", frozen, worker)
    if frozen.state.is_finished():  # an earlier attempt told it before its worker went away
        return Outcome("finished", frozen, str(previous))
    # Dask re-ran this task because the worker running it died: the trial's first run is
    # lost. Record that, and let the driver start a fresh trial with the same parameters.
    _fail(storage, job.trial_id, f"worker {previous} was lost while running this trial")
    return Outcome("lost", storage.get_trial(job.trial_id), str(previous))


def run_trial(job: TrialJob, blob: bytes = b"") -> Outcome:
    """Run one trial of a study (the Dask task, or the body of a client thread).

    ``blob`` is the pickled :class:`Payload` (Dask passes the bytes of a scattered future);
    it is unpickled once per process and token.
    """
    p = _payload(job, blob)
    storage = open_storage(p.storage)
    worker = _worker_name()
    not_ours = _start(storage, job, worker)
    if not_ours is not None:
        return not_ours
    try:
        storage.set_trial_system_attr(job.trial_id, WORKER_ATTR, worker)
    except UpdateFinishedTrialError:  # the driver stopped it (interrupt) as it began
        return Outcome("finished", storage.get_trial(job.trial_id), worker)
    if _in_worker():
        _apply_environment(p.environment)
    study = optuna.Study(
        study_name=p.study_name,
        storage=_study_storage(p, storage),
        sampler=reseeded(p.sampler, job.number),
        pruner=p.pruner,
    )
    trial = optuna.Trial(study, job.trial_id)

    value: Any = None
    state: TrialState | None = None
    error: BaseException | None = None
    reason: str | None = None
    tb: str | None = None
    start = time.perf_counter()
    try:
        value = p.objective(trial)
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except UpdateFinishedTrialError:
        # trial.report()/set_user_attr() after the driver marked the trial FAIL (interrupt):
        # the objective stops here and the trial stays as the driver left it.
        state = TrialState.FAIL
    except Exception as exc:
        if _caused_by_pruning(exc):
            # A library wrapped the pruning callback's TrialPruned (mlkit.train.xgboost raises
            # TrainingError from it): the trial was still pruned, not failed.
            state = TrialState.PRUNED
        else:
            state = TrialState.FAIL
            error = exc
            reason, tb = f"{type(exc).__name__}: {exc}", format_exc(p.sources)
    seconds = time.perf_counter() - start
    if state is None:
        reason = invalid_value(value, len(study.directions))
        if reason is not None:
            state = TrialState.FAIL
    try:
        if reason is not None:
            _fail(storage, job.trial_id, reason, tb)
        else:
            study.tell(trial, value, state=state, skip_if_finished=True)
    except UpdateFinishedTrialError:
        pass
    if error is not None and not isinstance(error, p.catch):
        return Outcome("raised", None, worker, seconds, _picklable(error))
    return Outcome("finished", None, worker, seconds)


def _caused_by_pruning(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, optuna.TrialPruned):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def invalid_value(value: Any, n_objectives: int) -> str | None:
    """Why Optuna would refuse ``value`` as the objective's result, or None if it is fine."""
    import math
    from collections.abc import Sequence

    many = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    values = list(value) if many else [value]
    if len(values) != n_objectives:
        return (
            f"objective returned {len(values)} value(s) {value!r} for a study with "
            f"{n_objectives} objective(s)"
        )
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return f"objective returned {value!r}: it must return a number"
        if math.isnan(f):
            return f"objective returned {value!r}: NaN is not a valid objective value"
    return None
