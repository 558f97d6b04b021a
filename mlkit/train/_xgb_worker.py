"""The callback every xgboost.dask worker runs each round: agree on a stop request, stream the
round's evaluation to the notebook (rank 0), and write checkpoints (rank 0).

It is pickled to the workers by xgboost.dask, so it holds only plain data (paths are computed on
the client: workers do not see the notebook's environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlkit._imports import require
from mlkit.train import _checkpoint
from mlkit.train._channel import publish, release, stop_flag

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")
xgb = require("xgboost")
collective = require("xgboost.collective")

__all__ = ["RoundReporter", "merge_history", "latest_metrics", "CHECKPOINT_PATTERN"]

CHECKPOINT_PATTERN = "round-*.ubj"


def _plain(values: Any) -> list[float]:
    # xgboost.cv logs (mean, std) tuples; training logs floats.
    return [float(v[0] if isinstance(v, tuple) else v) for v in values]


def merge_history(
    before: dict[str, dict[str, list[float]]], after: dict[str, Any]
) -> dict[str, dict[str, list[float]]]:
    """Concatenate two xgboost evaluation logs (``{"valid": {"auc": [...]}}``)."""
    out = {d: {m: list(v) for m, v in ms.items()} for d, ms in before.items()}
    for data, metrics in after.items():
        for metric, values in metrics.items():
            out.setdefault(data, {}).setdefault(metric, []).extend(_plain(values))
    return out


def latest_metrics(evals_log: dict[str, Any]) -> dict[str, float]:
    """``{"valid-auc": 0.98, ...}`` from the last entry of an evaluation log."""
    return {
        f"{data}-{metric}": _plain(values[-1:])[0]
        for data, metrics in evals_log.items()
        for metric, values in metrics.items()
        if len(values)
    }


def save_checkpoint(
    booster: xgb.Booster, folder: Path | str, rounds: int, meta: dict[str, Any], keep: int = 2
) -> Path | str:
    """Write ``round-NNNNNN.json`` (metadata) then ``round-NNNNNN.ubj`` (the model), atomically.

    The ``.ubj`` file appears last, so its presence means the checkpoint is complete.
    """
    folder = _checkpoint.as_where(str(folder))  # a local folder, or a URL in the shared store
    stem = f"round-{rounds:06d}"
    text = json.dumps({**meta, "round": rounds})
    join = _checkpoint.join
    _checkpoint.write_atomic(join(folder, f"{stem}.json"), lambda p: Path(p).write_text(text))
    _checkpoint.write_atomic(join(folder, f"{stem}.ubj"), booster.save_model)
    _checkpoint.prune(folder, CHECKPOINT_PATTERN, keep)
    for meta_file in _checkpoint.glob(folder, "round-*.json"):
        if not _checkpoint.exists(_checkpoint.with_suffix(meta_file, ".ubj")):
            _checkpoint.clear(folder, (Path(str(meta_file)).name,))
    return join(folder, f"{stem}.ubj")


class RoundReporter(xgb.callback.TrainingCallback):
    """Runs inside ``xgboost.dask.train`` on every worker.

    Parameters
    ----------
    job_id, topic : str
        The job's stop-flag key and message topic (see :mod:`mlkit.train._channel`).
    folder : str or None
        Checkpoint folder (on rank 0's file system), None for no checkpoints.
    every : int or None
        Write a checkpoint every ``every`` rounds (counted from the first tree).
    meta : dict
        Plain data stored beside each checkpoint (features, params, earlier history).
    """

    def __init__(
        self,
        job_id: str,
        topic: str,
        folder: str | None = None,
        every: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.topic = topic
        self.folder = folder
        self.every = every
        self.meta = dict(meta or {})

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        stop = stop_flag(self.job_id).is_set()
        if collective.get_world_size() > 1:
            # Every rank must leave the boosting loop at the same round, or the others would
            # wait in the next allreduce: agree on the flag first.
            flags = collective.allreduce(np.array([int(stop)], dtype=np.int32), collective.Op.MAX)
            stop = bool(flags[0])
        if collective.get_rank() == 0:
            done = model.num_boosted_rounds()
            publish(self.topic, {"step": done, "metrics": latest_metrics(evals_log)})
            if self.folder and self.every and done % self.every == 0:
                history = merge_history(self.meta.get("history", {}), evals_log)
                save_checkpoint(model, self.folder, done, {**self.meta, "history": history})
        return stop

    def after_training(self, model: Any) -> Any:
        release(self.job_id)
        return model
