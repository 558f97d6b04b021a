"""``mlkit.train.xgboost``: xgboost.dask on the active cluster, with progress, MLflow metrics,
checkpoints, a bounded failure on a lost worker, and a servable pyfunc with its preprocessing.

``xgboost.dask.train`` runs on a helper thread so the notebook's thread stays free to draw the
per-round progress the workers stream back, log metrics, watch the workers and take the kernel's
interrupt (which asks the ranks to stop together at the next round).
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlkit import _args
from mlkit._imports import require
from mlkit._interrupt import STOP_BUDGET_SECONDS
from mlkit.exceptions import ConfigArgumentError, ConfigError, DataError, TrainingError
from mlkit.train import _checkpoint, _preprocess
from mlkit.train._channel import Channel
from mlkit.train._devices import workers_have_gpus
from mlkit.train._monitor import JobMonitor, WorkerLost
from mlkit.train._progress import Progress
from mlkit.train._tracking import MetricLog, TrackedRun, log_datasets, training_run
from mlkit.train._xgb_worker import (
    CHECKPOINT_PATTERN,
    RoundReporter,
    merge_history,
    save_checkpoint,
)

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import dask.dataframe as dd
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    import xgboost.dask as xgb_dask
    from xgboost.collective import Config as CollConfig
else:
    dd = require("dask.dataframe")
    np = require("numpy")
    pd = require("pandas")
    xgb = require("xgboost")
    xgb_dask = require("xgboost.dask")
    CollConfig = require("xgboost.collective").Config

__all__ = ["xgboost", "XGBoostResult"]

_EXAMPLE_ROWS = 5


@dataclass
class XGBoostResult:
    """What :func:`xgboost` returns.

    Attributes
    ----------
    booster : xgboost.Booster
        The trained model (all rounds, including those before a resume).
    history : pandas.DataFrame
        One row per round (index 1..n), one column per ``<dataset>-<metric>``.
    best_iteration : int
        Zero-based index of the best round (the last one without early stopping).
    feature_importance : pandas.Series
        Total gain per feature, largest first.
    run_id : str or None
        The MLflow run the metrics went to.
    """

    booster: xgb.Booster
    history: pd.DataFrame
    best_iteration: int
    feature_importance: pd.Series
    run_id: str | None
    columns: list[str]
    preprocess: Any = None
    input_example: pd.DataFrame | None = None
    params: dict[str, Any] = field(default_factory=dict)
    checkpoint_dir: Path | str | None = None  # a URL when in the shared store
    early_stopped: bool = False
    tracking_uri: str | None = None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predict on raw pandas rows, exactly as the logged pyfunc does.

        Examples
        --------
        >>> result.predict(raw_df.head())     # doctest: +SKIP
        """
        from mlkit.train._pyfunc import BoosterPipeline

        model = BoosterPipeline(self.columns, self._iteration_range())
        model.booster, model.preprocess = self.booster, self.preprocess
        return model.predict(None, frame)

    def _iteration_range(self) -> tuple[int, int] | None:
        return (0, self.best_iteration + 1) if self.early_stopped else None

    def log_model(
        self, name: str | None = None, *, registered_model_name: str | None = None
    ) -> str:
        """Log an MLflow pyfunc (preprocessing + booster over the RAW columns); return its URI.

        The model goes to the training run (or a new run when training was not tracked). Its
        signature and input example are the raw columns, so the scoring server and
        ``mlflow.pyfunc.load_model(uri).predict(raw_df)`` take the same frames as training.

        Parameters
        ----------
        name : str, optional
            Model name inside the run (default ``"model"``).
        registered_model_name : str, optional
            Also register it in the MLflow model registry under this name.

        Examples
        --------
        >>> uri = result.log_model()                               # doctest: +SKIP
        >>> mlflow.pyfunc.load_model(uri).predict(raw_df)           # doctest: +SKIP
        """
        import cloudpickle
        from mlflow.models import infer_signature


        name = name or "model"
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"name={name!r}: use letters, digits, '-' or '_'")
        example = self.input_example
        requirements = [
            f"xgboost=={xgb.__version__}",
            f"pandas=={pd.__version__}",
            f"cloudpickle=={cloudpickle.__version__}",
        ]
        if self.preprocess is not None:
            sklearn = require("sklearn")
            requirements.append(f"scikit-learn=={sklearn.__version__}")
        with tempfile.TemporaryDirectory(prefix="mlkit-model-") as tmp:
            artifacts = {"booster": str(Path(tmp) / "booster.ubj")}
            self.booster.save_model(artifacts["booster"])
            if self.preprocess is not None:
                artifacts["preprocess"] = str(Path(tmp) / "preprocess.pkl")
                with open(artifacts["preprocess"], "wb") as fh:
                    cloudpickle.dump(self.preprocess, fh)
            signature = infer_signature(example, self.predict(example))
            kwargs = {
                "name": name,
                "python_model": str(Path(__file__).with_name("_pyfunc_model.py")),
                "model_config": {
                    "columns": self.columns,
                    "iteration_range": list(self._iteration_range() or []),
                },
                "artifacts": artifacts,
                "signature": signature,
                "input_example": example,
                "pip_requirements": requirements,
                "registered_model_name": registered_model_name,
            }
            return _log_into_run(self.run_id, self.tracking_uri, kwargs)


def _log_into_run(run_id: str | None, tracking_uri: str | None, kwargs: dict[str, Any]) -> str:
    import mlflow

    if run_id is None:
        from mlkit.track import run

        with run("xgboost-model"):
            return mlflow.pyfunc.log_model(**kwargs).model_uri
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        return mlflow.pyfunc.log_model(**kwargs).model_uri
    with mlflow.start_run(run_id=run_id, nested=active is not None):
        return mlflow.pyfunc.log_model(**kwargs).model_uri


# -- argument checks (all before anything is written) ---------------------------------------------
def _check_int(name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    _args.positive_int(name, value, error=ConfigArgumentError)


def _as_dask(frame: Any, what: str, npartitions: int) -> dd.DataFrame:
    if isinstance(frame, dd.DataFrame):
        return frame
    if isinstance(frame, pd.DataFrame):
        if frame.empty:
            raise DataError(f"{what} is empty: pass a DataFrame with rows")
        return dd.from_pandas(frame, npartitions=max(1, min(npartitions, len(frame))))
    raise DataError(
        f"{what} must be a dask or pandas DataFrame, but got {type(frame).__name__}: "
        "read data with mlkit.data.read(...) or dask.dataframe"
    )


def _split(frame: dd.DataFrame, target: str, what: str) -> tuple[dd.DataFrame, dd.Series]:
    if target not in frame.columns:
        raise DataError(
            f"target column {target!r} is not in {what}; its columns are {list(frame.columns)}"
        )
    # Persist first: dask-expr projects columns into read_parquet and re-plans partitions per
    # projection, so X and y taken from a lazy Parquet read can disagree on their partition count
    # ("Partitions between X and label are not consistent"). DaskDMatrix holds the data in
    # worker memory anyway.
    frame = frame.persist()
    return frame.drop(columns=[target]), frame[target]


def _check_features(meta: pd.DataFrame, preprocessed: bool) -> bool:
    """Raise DataError for columns xgboost cannot take; True if any is categorical."""
    bad = [
        str(c)
        for c, t in meta.dtypes.items()
        if not (pd.api.types.is_numeric_dtype(t) or isinstance(t, pd.CategoricalDtype))
    ]
    if bad:
        hint = "" if preprocessed else " pass preprocess= (an encoder) or convert them to numbers"
        raise DataError(f"column(s) {bad} are not numeric or categorical;{hint}")
    return any(isinstance(t, pd.CategoricalDtype) for t in meta.dtypes)


def _history_frame(history: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    cols = {f"{d}-{m}": v for d, ms in history.items() for m, v in ms.items()}
    frame = pd.DataFrame(cols)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="round")
    return frame


def _importance(booster: xgb.Booster, columns: list[str]) -> pd.Series:
    # one number per feature for total_gain (lists are for multi-output leaf values)
    gain = cast("dict[str, float]", booster.get_score(importance_type="total_gain"))
    series = pd.Series({c: float(gain.get(c, 0.0)) for c in columns}, name="total_gain")
    return series.sort_values(ascending=False)


def _training_error(
    exc: BaseException, lost: list[str], folder: Path | str | None, workers: list[str],
    history: list[dict[str, Any]],
) -> TrainingError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = f"xgboost training failed: {first}"
    if lost:
        text = (
            f"xgboost training failed: worker(s) {', '.join(lost)} left the cluster, and "
            f"xgboost.dask cannot continue without every worker it started with ({first})"
        )
    hint = (
        f". Continue from the last checkpoint in {folder} with resume=True"
        if folder
        else ". Pass checkpoint_every=K to be able to continue with resume=True after a failure"
    )
    return TrainingError(
        text + hint,
        lost_workers=lost,
        ranks=[workers.index(w) for w in lost if w in workers],
        step=int(history[-1]["step"]) if history else None,
        checkpoint_dir=str(folder) if folder else None,
    )


def xgboost(
    train: Any,
    target: str,
    valid: Any = None,
    params: dict[str, Any] | None = None,
    rounds: int = 100,
    early_stopping: int | None = None,
    preprocess: Any = None,
    *,
    name: str = "xgboost",
    checkpoint_every: int | None = None,
    resume: bool = False,
    callbacks: list[Any] | None = None,
    timeout: float = 120.0,
    progress: bool = True,
    track: bool = True,
    log_data: bool = False,
    client: Any = None,
) -> XGBoostResult:
    """Train an xgboost model on every worker of the active cluster (xgboost.dask).

    Parameters
    ----------
    train : dask or pandas DataFrame
        Features plus the ``target`` column (pandas frames are split across the workers).
    target : str
        Name of the label column.
    valid : dask or pandas DataFrame, optional
        Same columns as ``train``; evaluated every round (and used for early stopping).
    params : dict, optional
        xgboost parameters. mlkit adds ``tree_method="hist"`` and ``device`` ("cuda" when the
        workers have GPUs, else "cpu") unless you set them.
    rounds : int
        Total boosting rounds (with ``resume=True``: including those already done).
    early_stopping : int, optional
        Stop when the validation metric has not improved for this many rounds (needs ``valid``).
    preprocess : sklearn-compatible transformer, optional
        Applied to the raw feature columns (fitted on ``train`` first if it is not fitted) and
        bundled with the booster by :meth:`XGBoostResult.log_model`.
    name : str
        MLflow run name and checkpoint folder (``<mlkit home>/checkpoints/xgboost/<name>``).
    checkpoint_every : int, optional
        Write a checkpoint every K rounds (rank 0 writes; the folder must be reachable from it).
    resume : bool
        Continue from the latest checkpoint of ``name`` (start fresh if there is none).
    callbacks : list of xgboost.callback.TrainingCallback, optional
        Run on the workers each round (e.g. a tuning pruner); must pickle.
    timeout : float
        Seconds a collective operation may wait for a silent peer before failing (xgboost's
        collective timeout): a lost worker ends in :class:`~mlkit.exceptions.TrainingError`
        within about this bound.
    progress : bool
        Show per-round progress (a widget in a kernel, a text bar elsewhere).
    track : bool
        Log params and per-round metrics to MLflow (the active run, else a new one).
    log_data : bool
        Also record fingerprints of ``train``/``valid`` as MLflow dataset inputs
        (:func:`mlkit.track.log_dataset`; one extra pass over the data on the cluster).
    client : distributed.Client, optional
        Defaults to the active mlkit cluster's client.

    Returns
    -------
    XGBoostResult

    Examples
    --------
    >>> import mlkit
    >>> mlkit.cluster.up(workers=2, threads_per_worker=1)                 # doctest: +SKIP
    >>> res = mlkit.train.xgboost(train_ddf, "target", valid=valid_ddf,   # doctest: +SKIP
    ...     params={"objective": "binary:logistic", "eval_metric": "auc"}, rounds=50)
    >>> res.history.tail(1)                                               # doctest: +SKIP
    >>> uri = res.log_model()                                             # doctest: +SKIP
    """
    # ---- validate everything before touching the cluster, MLflow or the disk ----
    if not isinstance(target, str):
        raise ConfigError(f"target must be a column name (str), but got {target!r}")
    _check_int("rounds", rounds, allow_none=False)
    _check_int("early_stopping", early_stopping)
    _check_int("checkpoint_every", checkpoint_every)
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"params must be a dict of xgboost parameters, but got {params!r}")
    if early_stopping is not None and valid is None:
        raise ConfigError(
            "early_stopping needs valid=: stopping on the training data itself would never stop"
        )
    if not (isinstance(timeout, (int, float)) and timeout >= 1):
        raise ConfigError(f"timeout must be a number of seconds >= 1, but got {timeout!r}")
    if preprocess is not None:
        _preprocess.check_transformer(preprocess)
    for cb in callbacks or []:
        if not isinstance(cb, xgb.callback.TrainingCallback):
            raise ConfigError(f"callbacks must be xgboost TrainingCallback objects, got {cb!r}")
    folder = _checkpoint.folder("xgboost", name) if (checkpoint_every or resume) else None

    if client is None:
        from mlkit.cluster import get_client

        client = get_client()
    from mlkit.cluster._workers import live_workers

    n_workers = max(1, len(live_workers(client)))

    train = _as_dask(train, "train", n_workers)
    X, y = _split(train, target, "train")
    columns = [str(c) for c in X.columns]
    example = X.head(_EXAMPLE_ROWS)
    if valid is not None:
        valid = _as_dask(valid, "valid", n_workers)
        Xv, yv = _split(valid, target, "valid")
        if [str(c) for c in Xv.columns] != columns:
            raise DataError(
                f"valid has feature columns {list(Xv.columns)} but train has {columns}: "
                "they must match (same names, same order)"
            )
    if preprocess is not None:
        X = _preprocess.fit_transform_dask(preprocess, X, example)
        if valid is not None:
            Xv = Xv.map_partitions(_preprocess.transform_partition, preprocess, meta=X._meta)
    categorical = _check_features(X._meta, preprocess is not None)
    features = [str(c) for c in X.columns]

    merged: dict[str, Any] = {"tree_method": "hist", **(params or {})}
    if "device" not in merged:
        merged["device"] = "cuda" if workers_have_gpus(client) else "cpu"

    # ---- resume or start over ----
    start_booster: xgb.Booster | None = None
    prior_history: dict[str, dict[str, list[float]]] = {}
    done = 0
    if folder is not None:
        last = _checkpoint.latest(folder, CHECKPOINT_PATTERN) if resume else None
        if last is not None:
            meta = json.loads(_checkpoint.read_text(_checkpoint.with_suffix(last, ".json")))
            if meta.get("features") != features:
                raise ConfigError(
                    f"the checkpoint {last} was trained on features {meta.get('features')} but "
                    f"this data has {features}: use another name= or resume=False"
                )
            with _checkpoint.local_copy(last) as model_file:
                start_booster = xgb.Booster(model_file=model_file)
            prior_history = meta.get("history", {})
            done = start_booster.num_boosted_rounds()
    remaining = rounds - done

    try:
        dtrain = xgb_dask.DaskDMatrix(client, X, y, enable_categorical=categorical)
        evals = [(dtrain, "train")]
        if valid is not None:
            dvalid = xgb_dask.DaskDMatrix(client, Xv, yv, enable_categorical=categorical)
            evals.append((dvalid, "valid"))
    except Exception as exc:  # reading / preprocessing partitions failed on a worker
        raise DataError(f"could not load the training data on the workers: {exc!r}") from exc
    workers = sorted(set(dtrain.worker_map).union(*(d.worker_map for d, _ in evals)))

    logged_params = {
        **merged,
        "rounds": rounds,
        "early_stopping": early_stopping,
        "n_workers": len(workers),
        "n_features": len(features),
        "preprocess": type(preprocess).__name__ if preprocess is not None else None,
    }
    with training_run(name, logged_params, track) as run:
        if log_data:
            log_datasets(run, {"training": ("train", train), "validation": ("valid", valid)})
        if folder is not None and not resume:
            # A fresh start: the previous job's checkpoints of this name must not be resumed.
            _checkpoint.clear(folder, (CHECKPOINT_PATTERN, "round-*.json"))
        if remaining <= 0:
            booster = start_booster
            history = prior_history
            early = False
        else:
            booster, history, early = _fit(
                client, merged, dtrain, evals, remaining, early_stopping, start_booster,
                callbacks or [], timeout, progress, run, workers, folder, checkpoint_every,
                {"features": features, "columns": columns, "params": merged,
                 "history": prior_history}, done, rounds,
            )
        assert booster is not None
        if folder is not None and checkpoint_every:
            save_checkpoint(
                booster, folder, booster.num_boosted_rounds(),
                {"features": features, "columns": columns, "params": merged, "history": history},
            )
        try:
            best = int(booster.best_iteration)
        except AttributeError:
            best = booster.num_boosted_rounds() - 1
        if run is not None:
            from mlkit.track._writer import RunWriter

            with RunWriter(run.run_id, run.tracking_uri) as writer:
                writer.metric("best_iteration", best)
        return XGBoostResult(
            booster=booster,
            history=_history_frame(history),
            best_iteration=best,
            feature_importance=_importance(booster, features),
            run_id=run.run_id if run else None,
            columns=columns,
            preprocess=preprocess,
            input_example=example,
            params=merged,
            checkpoint_dir=folder,
            early_stopped=early,
            tracking_uri=run.tracking_uri if run else None,
        )


def _fit(
    client: Any,
    params: dict[str, Any],
    dtrain: Any,
    evals: list[tuple[Any, str]],
    remaining: int,
    early_stopping: int | None,
    start_booster: xgb.Booster | None,
    callbacks: list[Any],
    timeout: float,
    progress: bool,
    run: TrackedRun | None,
    workers: list[str],
    folder: Path | str | None,
    every: int | None,
    meta: dict[str, Any],
    done: int,
    rounds: int,
) -> tuple[xgb.Booster, dict[str, dict[str, list[float]]], bool]:
    """Run xgboost.dask.train on a helper thread and follow it from this one."""
    metric_log = MetricLog(run)
    bar = Progress(rounds, "xgboost", enabled=progress, initial=done)
    box: dict[str, Any] = {}
    with Channel(client) as channel:
        reporter = RoundReporter(
            channel.job_id, channel.topic, str(folder) if folder else None, every, meta
        )

        def work() -> None:
            try:
                box["out"] = xgb_dask.train(
                    client,
                    params,
                    dtrain,
                    num_boost_round=remaining,
                    evals=evals,
                    early_stopping_rounds=early_stopping,
                    xgb_model=start_booster,
                    verbose_eval=False,
                    callbacks=[reporter, *callbacks],
                    coll_cfg=CollConfig(timeout=int(math.ceil(timeout))),
                )
            except BaseException as exc:  # handed to the notebook's thread
                box["error"] = exc
            finally:
                channel.wake()  # the notebook's thread stops waiting for a next round

        thread = threading.Thread(target=work, name="mlkit-xgboost", daemon=True)
        monitor = JobMonitor(client, channel, workers, bar, metric_log)
        finished = lambda: not thread.is_alive()  # noqa: E731
        thread.start()
        try:
            monitor.wait(finished)
        except KeyboardInterrupt:
            # Ask every rank to leave at the next round (they agree on it, so none waits in a
            # collective), give them a moment, then let the run end KILLED. Control comes back
            # within the interrupt budget; ranks still finishing a round keep their stop request.
            channel.stop(workers)
            monitor.settle(finished, min(timeout, STOP_BUDGET_SECONDS))
            bar.close("stopped")
            raise
        except WorkerLost as lost:
            channel.stop(workers)
            monitor.settle(finished, timeout)
            bar.close("failed")
            cause = box.get("error")
            raise _training_error(cause or lost, lost.workers, folder, workers,
                                  monitor.history) from cause
        if "error" in box:
            metric_log.flush(force=True)
            bar.close("failed")
            gone = monitor.lost_workers()  # a lost worker explains the peers' socket errors
            raise _training_error(box["error"], gone, folder, workers,
                                  monitor.history) from box["error"]
        out = box["out"]
        booster = out["booster"]
        history = merge_history(meta["history"], out["history"])
        # Log the rounds the stream did not deliver (the history is authoritative).
        frame = _history_frame(history)
        for step, row in frame.iterrows():
            metric_log.add(int(step), {k: float(v) for k, v in row.items() if not pd.isna(v)})
        metric_log.flush(force=True)
        _close_bar(bar, booster, frame, early_stopping, rounds)
        return booster, history, early_stopping is not None


def _close_bar(
    bar: Progress, booster: Any, frame: pd.DataFrame, early_stopping: int | None, rounds: int
) -> None:
    """End the bar on what training did: the full history, and early stopping as a success."""
    done = booster.num_boosted_rounds()
    bar.state.history = [
        (int(step), {k: float(v) for k, v in row.items() if not pd.isna(v)})
        for step, row in frame.iterrows()
    ]
    bar.update(done, bar.state.history[-1][1] if bar.state.history else {})
    if early_stopping is None:
        bar.close("finished")
        return
    try:
        best = int(booster.best_iteration) + 1  # 1-based, as the bar counts rounds
    except AttributeError:
        best = done
    bar.close("early" if done < rounds else "finished", best=best)
