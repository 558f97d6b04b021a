"""Faults during a study: a worker killed mid-trial, the user interrupting the notebook."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from optuna.trial import TrialState

import mlkit
from mlkit.tune._storage import default_journal_path, open_storage, resolve
from tests._stop import press_stop
from tests._wait import wait_for, wait_until_false


def slow_objective(trial):

    x = trial.suggest_float("x", 0, 1)
    for step in range(10):
        time.sleep(0.1)
        trial.report(x, step)  # raises once the driver has failed this trial (interrupt)
    return x


def _trials(study_name: str) -> list:
    if not default_journal_path().exists():
        return []
    storage = open_storage(resolve(None))
    try:
        sid = storage.get_study_id_from_name(study_name)
    except KeyError:
        return []
    return storage.get_all_trials(sid, deepcopy=False)


def _finished(study_name: str) -> int:
    return sum(1 for t in _trials(study_name) if t.state.is_finished())


def _running(study_name: str) -> int:
    return sum(1 for t in _trials(study_name) if t.state == TrialState.RUNNING)


def _after(condition, action, timeout=300.0):
    def loop():
        wait_for(condition, timeout=timeout, interval=0.02, backoff=False, what="the moment to act")
        action()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


@pytest.mark.slow
def test_worker_killed_mid_study_reruns_its_trial(fresh_cluster):
    import numpy as np

    client = fresh_cluster.client
    killed = []
    weights = np.ones(200_000)  # 1.6 MB captured: the payload is scattered to every worker

    def pid_objective(trial):
        import os

        x = trial.suggest_float("x", 0, 1) * weights[0]
        trial.set_user_attr("pid", os.getpid())  # lets the test kill the process running it
        for step in range(10):
            time.sleep(0.1)
            trial.report(x, step)
        return x

    def running_pid():
        if _finished("killed") < 2:
            return None
        for t in _trials("killed"):
            if t.state == TrialState.RUNNING and "pid" in t.user_attrs:
                return t.user_attrs["pid"]
        return None

    def kill():
        pid = running_pid()
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    # Kill a worker process in the middle of an objective, after the first trials finished.
    _after(lambda: running_pid() is not None, kill)
    study = mlkit.tune.tune(pid_objective, 8, study_name="killed", progress=False)
    assert killed, "the worker was never killed: the study ended first"

    by_state: dict[str, list] = {}
    for t in study.trials:
        by_state.setdefault(t.state.name, []).append(t)
    assert len(by_state["COMPLETE"]) == 8  # exactly n_trials finished
    assert "RUNNING" not in by_state
    lost = by_state["FAIL"]
    assert lost, "the killed worker's trial should be FAIL"
    for t in lost:
        reason = t.system_attrs["fail_reason"]
        assert "lost" in reason or "failed" in reason, reason
    # each lost trial was re-run with the same parameters, and that re-run completed
    retries = {
        t.system_attrs["mlkit.retry_of"]: t
        for t in study.trials
        if "mlkit.retry_of" in t.system_attrs
    }
    for t in lost:
        assert t.number in retries
        # A trial cancelled before its objective drew anything (its task depended on the
        # payload copy the killed worker held) has no parameters to keep: its re-run draws them.
        if t.params:
            assert retries[t.number].params == t.params
    # MLflow has one child per trial; the lost one FAILED
    import mlflow

    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{study.mlflow_run_id}'",
    )
    assert len(runs) == len(study.trials)
    assert sorted(runs["status"]) == sorted(["FINISHED"] * 8 + ["FAILED"] * len(lost))
    # the cluster is whole again
    client.wait_for_workers(2, timeout=60)
    assert client.submit(lambda: 41 + 1, pure=False).result(timeout=60) == 42


@pytest.mark.slow
def test_interrupt_stops_cleanly_and_the_study_resumes(cluster):
    client = cluster.client
    _after(
        lambda: _running("interrupted") >= 2 and _finished("interrupted") >= 1,
        press_stop,
    )
    with pytest.raises(KeyboardInterrupt):
        mlkit.tune.tune(slow_objective, 40, study_name="interrupted", progress=False)

    study = mlkit.tune.open_study("interrupted")
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states
    stopped = [t for t in study.trials if "interrupted" in t.system_attrs.get("fail_reason", "")]
    assert stopped, "the running trials should be FAIL 'interrupted'"
    n_before = len(study.trials)
    assert n_before < 40

    # no task of the study is left on the cluster; the running objectives stopped at report()
    def leftover(dask_scheduler):
        return [k for k in dask_scheduler.tasks if "mlkit-tune-interrupted" in str(k)]

    wait_until_false(lambda: client.run_on_scheduler(leftover), what="no task of the study left")

    # MLflow: the parent run was KILLED, the stopped trials' child runs too; nothing RUNNING
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True)
    assert "RUNNING" not in set(runs["status"])
    parents = runs[runs["tags.mlkit.kind"] == "tune"]
    assert list(parents["status"]) == ["KILLED"]

    # the study continues under the same name, on a cluster that works
    def quick(trial):
        return trial.suggest_float("x", 0, 1)

    resumed = mlkit.tune.tune(quick, 3, study_name="interrupted", progress=False)
    assert len(resumed.trials) == n_before + 3
    assert sum(t.state == TrialState.COMPLETE for t in resumed.trials[-3:]) == 3
    runs = mlflow.search_runs(search_all_experiments=True)
    parents = runs[runs["tags.mlkit.kind"] == "tune"]
    assert list(parents["status"]) == ["FINISHED"]  # the same parent run, continued
