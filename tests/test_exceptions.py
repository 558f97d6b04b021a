"""The structured fields of mlkit's errors survive the trip back from a Dask task (pickle)."""

from __future__ import annotations

import pickle

from mlkit.exceptions import JobExecutionError, MlkitError, TrainingError


def test_training_error_fields_default_empty_and_travel_between_processes():
    plain = TrainingError("xgboost training failed: boom")
    assert (plain.lost_workers, plain.ranks, plain.step, plain.checkpoint_dir) == ([], [], None,
                                                                                    None)
    err = TrainingError("worker(s) ['tcp://192.0.2.11:4000'] (rank [1]) left the cluster",
                        lost_workers=["tcp://192.0.2.11:4000"], ranks=[1], step=7,
                        checkpoint_dir="/home/u/.mlkit/checkpoints/xgboost/run")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is TrainingError and isinstance(back, MlkitError)
    assert str(back) == str(err)
    assert (back.lost_workers, back.ranks, back.step, back.checkpoint_dir) == (
        ["tcp://192.0.2.11:4000"], [1], 7, "/home/u/.mlkit/checkpoints/xgboost/run")


def test_job_execution_error_fields_travel_too():
    back = pickle.loads(pickle.dumps(JobExecutionError("failed", cell_index=3, ename="KeyError")))
    assert (back.cell_index, back.ename) == (3, "KeyError")
