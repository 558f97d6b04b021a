"""The one way mlkit writes metrics, params and tags to MLflow.

Every package (train, tune, jobs, monitor, track) hands its values to a :class:`RunWriter`,
which

* takes MLflow's own limits from :mod:`mlflow.utils.validation` (key length, param and tag value
  length, entities per ``log_batch``) instead of copies of them;
* makes keys MLflow accepts and truncates over-long values in one place, with a visible mark
  (:data:`TRUNCATED`), so a long error message is cut, never rejected;
* buffers and writes with :meth:`mlflow.MlflowClient.log_batch`, split to MLflow's batch limits,
  one store transaction per batch instead of one per value;
* optionally hands metric batches to MLflow's asynchronous logging (``synchronous=False``), and
  always waits for them before a run is ended, so a run never ends with data in flight;
* ends the runs it owns (:meth:`RunWriter.create`) FINISHED, FAILED or KILLED however the block
  exits: never RUNNING.

MLflow is imported on first use, so importing this module stays cheap.

Examples
--------
>>> from mlkit.track._writer import clip, limits
>>> limits().tag_value
8000
>>> clip("abcdefghij", 8)
'abcde...'
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlkit._imports import require
from mlkit.track import _store

__all__ = [
    "Limits",
    "limits",
    "TRUNCATED",
    "clip",
    "metric_key",
    "param_text",
    "tag_text",
    "now_ms",
    "RunWriter",
    "FinishedRun",
    "write_finished",
]

#: What ends a value that was cut to fit MLflow's limit.
TRUNCATED = "..."

_log = logging.getLogger("mlkit.track")

# What MLflow allows in a key on every platform (it also allows ":" except on Windows).
_BAD_KEY = re.compile(r"[^/\w.\- ]")


@dataclass(frozen=True)
class Limits:
    """MLflow's limits, as the installed MLflow defines them."""

    key: int
    param_value: int
    tag_value: int
    metrics_per_batch: int
    params_tags_per_batch: int
    entities_per_batch: int


@functools.cache
def _validation() -> Any:
    return require("mlflow.utils.validation")


@functools.cache
def limits() -> Limits:
    """MLflow's limits from :mod:`mlflow.utils.validation` (read once).

    Examples
    --------
    >>> lim = limits()
    >>> lim.key, lim.param_value, lim.metrics_per_batch
    (250, 6000, 1000)
    """
    v = _validation()
    return Limits(
        key=v.MAX_ENTITY_KEY_LENGTH,
        param_value=v.MAX_PARAM_VAL_LENGTH,
        tag_value=v.MAX_TAG_VAL_LENGTH,
        metrics_per_batch=v.MAX_METRICS_PER_BATCH,
        params_tags_per_batch=v.MAX_PARAMS_TAGS_PER_BATCH,
        entities_per_batch=v.MAX_ENTITIES_PER_BATCH,
    )


def now_ms() -> int:
    """MLflow's timestamp for "now": milliseconds since the epoch.

    Examples
    --------
    >>> now_ms() > 1_700_000_000_000
    True
    """
    return int(time.time() * 1000)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in :data:`TRUNCATED` if it was cut.

    Examples
    --------
    >>> clip("short", 10)
    'short'
    >>> clip("x" * 20, 10)
    'xxxxxxx...'
    """
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def metric_key(name: Any) -> str:
    """A key MLflow accepts for ``name``: if MLflow's own check refuses it, the characters it
    does not allow become ``_``; cut to MLflow's key length.

    Used for metric, param and tag keys alike (MLflow has one rule for all three).

    Examples
    --------
    >>> metric_key("lr[0]"), metric_key("train/loss")
    ('lr_0_', 'train/loss')
    """
    text = str(name)
    if not _validation().validate_param_and_metric_name(text):
        text = _BAD_KEY.sub("_", text)
    return clip(text, limits().key) or "_"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(value, allow_nan=True, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def param_text(value: Any) -> str:
    """A param value as MLflow stores it (lists and dicts as JSON), cut to MLflow's limit.

    Examples
    --------
    >>> param_text([1, 2]), param_text(0.5)
    ('[1, 2]', '0.5')
    """
    return clip(_text(value), limits().param_value)


def tag_text(value: Any) -> str:
    """A tag value as MLflow stores it, cut to MLflow's limit.

    Examples
    --------
    >>> len(tag_text("e" * 10_000)) == limits().tag_value
    True
    """
    return clip(_text(value), limits().tag_value)


def _chunks(metrics: list[Any], params: list[Any], tags: list[Any]) -> Iterator[tuple]:
    """Split one batch into ``log_batch`` calls within MLflow's per-batch limits."""
    lim = limits()
    while metrics or params or tags:
        p, params = params[: lim.params_tags_per_batch], params[lim.params_tags_per_batch :]
        t, tags = tags[: lim.params_tags_per_batch], tags[lim.params_tags_per_batch :]
        room = min(lim.metrics_per_batch, lim.entities_per_batch - len(p) - len(t))
        m, metrics = metrics[:room], metrics[room:]
        yield m, p, t


class RunWriter:
    """Buffered writes of metrics, params and tags to one MLflow run.

    Parameters
    ----------
    run_id : str
        The run to write to.
    tracking_uri : str, optional
        Its tracking URI (MLflow's current one when omitted).
    client : mlflow.MlflowClient, optional
        A client to reuse (one is made from ``tracking_uri`` otherwise).
    asynchronous : bool
        Hand metric-only batches to MLflow's asynchronous logging (``synchronous=False``): the
        caller does not wait for the store. :meth:`wait` (called by :meth:`end` and
        :meth:`close`) waits for them and raises what failed. Params and tags are always written
        synchronously: MLflow applies asynchronous batches in any order, and a tag written
        twice (a status) must end with its last value.

    Examples
    --------
    >>> w = RunWriter(run_id, tracking_uri)             # doctest: +SKIP
    >>> w.metrics({"loss": 0.3}, step=1)                # doctest: +SKIP
    >>> w.tags({"mlkit.kind": "trial"})                 # doctest: +SKIP
    >>> w.flush()                                       # doctest: +SKIP
    """

    def __init__(
        self,
        run_id: str,
        tracking_uri: str | None = None,
        *,
        client: Any = None,
        asynchronous: bool = False,
    ) -> None:
        self.run_id = run_id
        self.client = client if client is not None else require("mlflow").MlflowClient(
            tracking_uri
        )
        self.asynchronous = asynchronous
        self._metrics: list[Any] = []
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._operations: list[Any] = []
        self._status = "FINISHED"
        self._end_time: int | None = None

    # -- create / end ----------------------------------------------------------------------------
    @classmethod
    @contextmanager
    def create(
        cls,
        experiment_id: str,
        *,
        tracking_uri: str | None = None,
        client: Any = None,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        asynchronous: bool = False,
    ) -> Iterator[RunWriter]:
        """Create a run and yield its writer; the run always ends in a final state.

        At the end of the block everything queued is written and the run ends FINISHED, or with
        the status given to :meth:`set_status`; an exception ends it FAILED and KeyboardInterrupt
        KILLED, also when the failure is in that final write itself.

        Examples
        --------
        >>> with RunWriter.create(exp_id, run_name="trial-0") as w:   # doctest: +SKIP
        ...     w.metric("value", 0.5)
        """
        client = client if client is not None else require("mlflow").MlflowClient(tracking_uri)
        tag_values = {metric_key(k): tag_text(v) for k, v in (tags or {}).items()}
        run = _store.retry_locked(
            client.create_run,
            experiment_id, start_time=start_time, tags=tag_values, run_name=run_name,
        )
        writer = cls(run.info.run_id, client=client, asynchronous=asynchronous)
        status = "FAILED"
        try:
            yield writer
            writer.close()
            status = writer._status
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            writer.end(status, end_time=writer._end_time)

    def set_status(self, status: str, end_time: int | None = None) -> None:
        """The status (and end time, ms) a run from :meth:`create` ends with if its block
        succeeds."""
        self._status = status
        self._end_time = end_time

    def end(self, status: str, end_time: int | None = None) -> None:
        """Write what is queued, then end the run ``status``: it is never left RUNNING.

        When ``status`` is not FINISHED (the run is ending because something failed) the write
        is best effort: its own error is logged, not raised over the one that ended the run.
        """
        try:
            self.close()
        except Exception as exc:
            if status == "FINISHED":
                _store.retry_locked(self.client.set_terminated, self.run_id, "FAILED", end_time)
                raise
            _log.warning("MLflow run %s: could not write its last values: %s", self.run_id, exc)
        _store.retry_locked(self.client.set_terminated, self.run_id, status, end_time)

    # -- queue -----------------------------------------------------------------------------------
    def metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        """Queue one metric value (at ``step``; now unless ``timestamp`` in ms is given)."""
        from mlflow.entities import Metric

        self._metrics.append(
            Metric(metric_key(key), float(value), timestamp or now_ms(), int(step))
        )

    def metrics(
        self, values: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        """Queue several metric values at one step."""
        when = timestamp or now_ms()
        for key, value in values.items():
            self.metric(key, value, step, when)

    def param(self, key: str, value: Any) -> None:
        """Queue one param (cut to MLflow's param value limit)."""
        self._params[metric_key(key)] = param_text(value)

    def params(self, values: Mapping[str, Any]) -> None:
        """Queue several params (None is stored as ``"None"``, as MLflow's own API does)."""
        for key, value in values.items():
            self.param(key, value)

    def tag(self, key: str, value: Any) -> None:
        """Queue one tag (cut to MLflow's tag value limit); a later value of a key wins."""
        self._tags[metric_key(key)] = tag_text(value)

    def tags(self, values: Mapping[str, Any]) -> None:
        """Queue several tags."""
        for key, value in values.items():
            self.tag(key, value)

    @property
    def pending(self) -> int:
        """How many values are queued and not yet handed to MLflow."""
        return len(self._metrics) + len(self._params) + len(self._tags)

    # -- write -----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything queued with ``log_batch``, split to MLflow's batch limits."""
        if not self.pending:
            return
        from mlflow.entities import Param, RunTag

        metrics, self._metrics = self._metrics, []
        params = [Param(k, v) for k, v in self._params.items()]
        tags = [RunTag(k, v) for k, v in self._tags.items()]
        self._params, self._tags = {}, {}
        for m, p, t in _chunks(metrics, params, tags):
            if self.asynchronous and not p and not t:
                self._operations.append(
                    self.client.log_batch(self.run_id, metrics=m, synchronous=False)
                )
            else:
                # A batch is one transaction, rolled back on a lock error: retrying is safe.
                _store.retry_locked(
                    self.client.log_batch, self.run_id, metrics=m, params=p, tags=t,
                    synchronous=True,
                )

    def wait(self) -> None:
        """Wait for the asynchronous batches handed to MLflow; raise the first that failed."""
        operations, self._operations = self._operations, []
        for op in operations:
            if op is not None:
                op.wait()

    def close(self) -> None:
        """Flush and wait: afterwards everything queued is in the store."""
        try:
            self.flush()
        finally:
            self.wait()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- finished runs, many at once -------------------------------------------------------------------
@dataclass
class FinishedRun:
    """A run that is over before it is written: a tuning trial, a sweep's notebook.

    ``metrics`` holds ``(key, value, step)`` triples (all stamped ``end_time``, else now);
    keys and values are made MLflow-safe by :func:`write_finished` (as :class:`RunWriter` does).
    """

    run_name: str
    status: str = "FINISHED"
    start_time: int | None = None
    end_time: int | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)


def write_finished(client: Any, experiment_id: str, runs: Sequence[FinishedRun]) -> list[str]:
    """Write finished runs into ``experiment_id``; returns their run ids, in order.

    On a SQL store (mlkit's default SQLite one) every run of the call is written in **one**
    transaction, through MLflow's own table models (``mlflow.store.tracking.dbmodels``): MLflow's
    public API spends six transactions on each run (create, params, metrics, tags, latest
    metrics, end), measured at 40-50 ms per run here, which was most of what tracking cost a
    tuning study. Anything that goes wrong in that path (another MLflow version's schema, a
    store that refuses) rolls back the whole transaction, and the runs are written one by one
    through :class:`RunWriter` instead: the same runs either way, never half of them.

    Examples
    --------
    >>> from mlflow import MlflowClient                                  # doctest: +SKIP
    >>> c = MlflowClient("sqlite:///mlflow.db")                          # doctest: +SKIP
    >>> write_finished(c, "0", [FinishedRun("trial-0", metrics=[("value", 0.5, 0)])])
    ... # doctest: +SKIP
    ['3f0c...']
    """
    if not runs:
        return []
    prepared = [_prepared(r) for r in runs]
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if _is_sql_store(store):
        try:
            return _store.retry_locked(_write_sql, store, experiment_id, prepared)
        except Exception as exc:  # noqa: BLE001 - rolled back: MLflow's own path follows
            _log.debug("writing %d runs in one transaction failed (%s); one by one instead",
                       len(prepared), exc)
    ids = []
    for r in prepared:
        with RunWriter.create(
            experiment_id, client=client, run_name=r.run_name, start_time=r.start_time,
            tags=r.tags,
        ) as w:
            for key, value, step in r.metrics:
                w.metric(key, value, step=step, timestamp=r.end_time)
            w.params(r.params)
            w.set_status(r.status, end_time=r.end_time)
        ids.append(w.run_id)
    return ids


def _prepared(run: FinishedRun) -> FinishedRun:
    """``run`` with MLflow-safe keys and values, and its timestamps filled in; a status MLflow
    does not know raises here, before anything of the call is written."""
    from mlflow.entities import RunStatus

    RunStatus.from_string(run.status)
    end = run.end_time if run.end_time is not None else now_ms()
    return FinishedRun(
        run_name=run.run_name,
        status=run.status,
        start_time=run.start_time if run.start_time is not None else end,
        end_time=end,
        tags={metric_key(k): tag_text(v) for k, v in run.tags.items()},
        params={metric_key(k): param_text(v) for k, v in run.params.items()},
        metrics=[(metric_key(k), float(v), int(s)) for k, v, s in run.metrics],
    )


def _is_sql_store(store: Any) -> bool:
    if store is None:
        return False
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except ImportError:  # pragma: no cover - an MLflow without its SQL store
        return False
    return isinstance(store, SqlAlchemyStore)


def _write_sql(store: Any, experiment_id: str, runs: list[FinishedRun]) -> list[str]:
    """One transaction: each run's row with its final status, tags, params, metric history
    and latest metrics, as MLflow's own ``create_run`` / ``log_batch`` / ``set_terminated``
    would leave them."""
    from mlflow.entities import LifecycleStage, Metric, SourceType
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
    from mlflow.utils.uri import append_to_uri_path

    v = _validation()
    experiment = store.get_experiment(experiment_id)
    store._check_experiment_is_active(experiment)
    ids = []
    with store.ManagedSessionMaker(read_only=False) as session:
        for r in runs:
            run_id = uuid.uuid4().hex
            tags = dict(r.tags)
            tags.setdefault(MLFLOW_RUN_NAME, r.run_name)
            entities = [Metric(k, val, r.end_time, s) for k, val, s in r.metrics]
            v._validate_batch_log_data(entities, [], [])
            for key, value in tags.items():
                v._validate_tag(key, value)
            for key, value in r.params.items():
                v._validate_param(key, value)
            row = SqlRun(
                name=tags[MLFLOW_RUN_NAME],
                artifact_uri=append_to_uri_path(
                    experiment.artifact_location, run_id, store.ARTIFACTS_FOLDER_NAME
                ),
                run_uuid=run_id,
                experiment_id=experiment_id,
                source_type=SourceType.to_string(SourceType.UNKNOWN),
                source_name="",
                entry_point_name="",
                user_id=tags.get(MLFLOW_USER, "unknown"),
                status=r.status,
                start_time=r.start_time,
                end_time=r.end_time,
                deleted_time=None,
                source_version="",
                lifecycle_stage=LifecycleStage.ACTIVE,
            )
            row.tags = [SqlTag(key=k, value=val) for k, val in tags.items()]
            row.params = [SqlParam(key=k, value=val) for k, val in r.params.items()]
            session.add(row)
            latest: dict[str, tuple[int, int, float, bool]] = {}
            seen = set()
            for m in entities:
                if (m.key, m.value, m.step) in seen:  # MLflow drops exact repeats too
                    continue
                seen.add((m.key, m.value, m.step))
                is_nan, value = store.sanitize_metric_value(m.value)
                session.add(SqlMetric(run_uuid=run_id, key=m.key, value=value,
                                      timestamp=m.timestamp, step=m.step, is_nan=is_nan))
                newest = latest.get(m.key)
                if newest is None or (m.step, m.timestamp, value) > newest[:3]:
                    latest[m.key] = (m.step, m.timestamp, value, is_nan)
            for key, (step, timestamp, value, is_nan) in latest.items():
                session.add(SqlLatestMetric(run_uuid=run_id, key=key, value=value,
                                            timestamp=timestamp, step=step, is_nan=is_nan))
            ids.append(run_id)
    return ids
