"""mlkit.tune.tune on a real 2-worker LocalCluster with the default journal storage."""

from __future__ import annotations

import os

import optuna
import pytest
from optuna.trial import TrialState

import mlkit
from mlkit.exceptions import TuneError
from mlkit.tune._storage import default_journal_path
from tests._wait import wait_until_false


def quadratic(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2


def states(study):
    out = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def test_trials_run_as_tasks_on_every_worker(cluster):
    def objective(trial):
        import time

        x = trial.suggest_float("x", -10, 10)
        time.sleep(0.2)  # long enough that both worker slots get trials
        trial.set_user_attr("pid", os.getpid())
        return (x - 2) ** 2

    study = mlkit.tune.tune(objective, 8, study_name="spread", progress=False, track=False)
    assert isinstance(study, optuna.Study)
    assert states(study) == {"COMPLETE": 8}
    trials = study.trials
    worker_pids = set(cluster.client.run(os.getpid).values())
    assert {t.user_attrs["pid"] for t in trials} == worker_pids  # both workers, never the client
    workers = {t.system_attrs["mlkit.worker"] for t in trials}
    assert workers == set(cluster.client.scheduler_info(n_workers=-1)["workers"])
    assert all(-10 <= t.params["x"] <= 10 for t in trials)
    assert study.best_value == min(t.value for t in trials)
    assert default_journal_path().exists()  # the default, durable storage
    # plain Optuna reads the study back from the journal
    again = optuna.load_study(study_name="spread", storage=mlkit.tune.open_study("spread")._storage)
    assert len(again.trials) == 8


def test_a_trial_waiting_for_a_busy_slot_does_not_count_the_wait(cluster):
    """Trials queued behind busy workers start (and are timed) only when a worker takes them:
    on each worker one trial runs at a time, and no duration includes a wait."""

    def objective(trial):
        import time

        time.sleep(0.6)
        return trial.suggest_float("x", 0, 1)

    study = mlkit.tune.tune(objective, 8, study_name="queued", progress=False, track=False)
    assert states(study) == {"COMPLETE": 8}
    by_worker = {}
    for t in study.trials:
        assert t.duration.total_seconds() < 1.15, t  # a wait behind a 0.6 s trial would be more
        by_worker.setdefault(t.system_attrs["mlkit.worker"], []).append(t)
    for trials in by_worker.values():
        trials.sort(key=lambda t: t.datetime_start)
        for before, after in zip(trials, trials[1:], strict=False):
            assert after.datetime_start >= before.datetime_complete  # one at a time per slot


def test_concurrency_one_runs_one_trial_at_a_time_on_a_bigger_cluster(cluster):
    """concurrency=1 on 2 workers: no trial waits ahead (it would start at once on the idle
    worker), so trials run strictly one after another, each sampled after the last ended."""

    def objective(trial):
        import time

        time.sleep(0.3)
        return trial.suggest_float("x", 0, 1)

    study = mlkit.tune.tune(objective, 5, study_name="one-at-a-time", concurrency=1,
                            progress=False, track=False)
    assert states(study) == {"COMPLETE": 5}
    trials = sorted(study.trials, key=lambda t: t.datetime_start)
    assert [t.number for t in trials] == list(range(5))
    for before, after in zip(trials, trials[1:], strict=False):
        assert after.datetime_start >= before.datetime_complete, (before, after)


def test_enqueued_trials_run_with_their_parameters(cluster):
    mlkit.tune.tune(quadratic, 1, study_name="enq", progress=False, track=False)
    study = mlkit.tune.open_study("enq")
    study.enqueue_trial({"x": 1.25})
    study.enqueue_trial({"x": -3.5})
    study = mlkit.tune.tune(quadratic, 4, study_name="enq", progress=False, track=False)
    assert states(study) == {"COMPLETE": 5}  # nothing left WAITING
    xs = [t.params["x"] for t in study.trials]
    assert 1.25 in xs and -3.5 in xs
    assert all(t.datetime_start is not None for t in study.trials)


def test_another_optimizer_taking_a_waiting_trial_costs_this_call_nothing(cluster):
    """A plain Optuna optimizer on the same study (a second notebook, a script) pops the trials
    this call keeps WAITING ahead of its workers, as enqueued trials. Those are the thief's to
    finish; this call creates others in their place and still runs all its trials."""
    import threading
    import time

    from mlkit.tune._task import WORKER_ATTR

    def objective(trial):
        import time

        time.sleep(0.4)
        return trial.suggest_float("x", 0, 1)

    stolen, stop = [], threading.Event()

    def thief():
        while not stop.is_set() and len(stolen) < 2:
            try:
                study = mlkit.tune.open_study("shared-study")
            except TuneError:  # not created yet
                time.sleep(0.02)
                continue
            waiting = {t.number for t in study.get_trials(deepcopy=False,
                                                          states=(TrialState.WAITING,))}
            if not waiting:
                time.sleep(0.01)
                continue
            trial = study.ask()  # Optuna pops the oldest WAITING trial, as enqueue_trial's
            study.tell(trial, -1.0)
            if trial.number in waiting:
                stolen.append(trial.number)

    t = threading.Thread(target=thief)
    t.start()
    try:
        study = mlkit.tune.tune(objective, 12, study_name="shared-study", concurrency=2,
                                progress=False, track=False)
    finally:
        stop.set()
        t.join()
    assert stolen, "the other optimizer never found a WAITING trial to take"
    trials = study.get_trials(deepcopy=False)
    ours = [tr for tr in trials if WORKER_ATTR in tr.system_attrs]
    assert len(ours) == 12 and all(tr.state == TrialState.COMPLETE for tr in ours)
    assert all(trials[n].value == -1.0 and WORKER_ATTR not in trials[n].system_attrs
               for n in stolen)  # finished by the one that took them
    assert states(study).keys() == {"COMPLETE"}  # nothing left WAITING or RUNNING


def test_same_study_name_continues_the_study(cluster):
    first = mlkit.tune.tune(quadratic, 4, study_name="cont", progress=False, track=False)
    assert len(first.trials) == 4
    second = mlkit.tune.tune(quadratic, 3, study_name="cont", progress=False, track=False)
    assert [t.number for t in second.trials] == list(range(7))
    assert states(second) == {"COMPLETE": 7}
    assert second.best_value <= first.best_value


def test_seeded_sampler_gives_distinct_reproducible_parameters(cluster):
    def run(name):
        study = mlkit.tune.tune(
            quadratic,
            10,
            study_name=name,
            sampler=optuna.samplers.RandomSampler(seed=7),
            progress=False,
            track=False,
        )
        return {t.number: t.params["x"] for t in study.trials}

    a, b = run("seed-a"), run("seed-b")
    assert a == b  # same seed, same trial number -> same parameters, however tasks were scheduled
    assert len(set(a.values())) == 10  # and each task's copy of the sampler drew its own values


def test_objective_error_is_recorded_and_the_study_goes_on(cluster):
    def objective(trial):
        x = trial.suggest_int("x", 0, 100)
        if trial.number % 3 == 1:
            raise ValueError(f"boom at {x}")
        return x

    study = mlkit.tune.tune(objective, 9, study_name="errs", progress=False, track=False)
    assert states(study) == {"COMPLETE": 6, "FAIL": 3}
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    for t in failed:
        assert t.system_attrs["fail_reason"] == f"ValueError: boom at {t.params['x']}"
        tb = t.system_attrs["mlkit.traceback"]
        # the user's own file and line, whatever cloudpickle names the code it ships
        line = objective.__code__.co_firstlineno + 3  # the `raise` line
        assert f'File "{__file__}", line {line}, in objective' in tb
        assert 'raise ValueError(f"boom at {x}")' in tb
        assert "<dynamic-code>" not in tb


def test_error_outside_catch_stops_the_study_and_is_raised(cluster):
    def objective(trial):
        trial.suggest_float("x", 0, 1)
        if trial.number == 2:
            raise KeyError("fatal")
        return 1.0

    with pytest.raises(KeyError, match="fatal"):
        mlkit.tune.tune(
            objective, 20, study_name="fatal", catch=(ValueError,), progress=False, track=False
        )
    study = mlkit.tune.open_study("fatal")
    assert "RUNNING" not in states(study)
    assert len(study.trials) < 20
    bad = [t for t in study.trials if t.number == 2][0]
    assert bad.state == TrialState.FAIL and "KeyError" in bad.system_attrs["fail_reason"]


def test_invalid_objective_values_fail_with_a_reason(cluster):
    def objective(trial):
        return [None, float("nan"), "abc", 1.5][trial.number]

    study = mlkit.tune.tune(
        objective, 4, study_name="values", concurrency=1, progress=False, track=False
    )
    by_number = {t.number: t for t in study.trials}
    assert [by_number[i].state.name for i in range(4)] == ["FAIL", "FAIL", "FAIL", "COMPLETE"]
    assert "None" in by_number[0].system_attrs["fail_reason"]
    assert "NaN" in by_number[1].system_attrs["fail_reason"]
    assert "'abc'" in by_number[2].system_attrs["fail_reason"]


def test_pruner_sees_values_reported_by_other_trials(cluster):
    # Trials 0-2 report low losses; trial 3 reports a high one and must be pruned by the median
    # of the others, which were reported from other tasks (often other workers) to the storage.
    def objective(trial):
        loss = [0.1, 0.2, 0.3, 0.9][trial.number]
        for step in range(3):
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    study = mlkit.tune.tune(
        objective,
        4,
        study_name="prune",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        concurrency=1,
        progress=False,
        track=False,
    )
    by_number = {t.number: t for t in study.trials}
    assert [by_number[i].state.name for i in range(4)] == ["COMPLETE"] * 3 + ["PRUNED"]
    assert by_number[3].intermediate_values == {0: 0.9}


def test_multi_objective_study(cluster):
    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        return x, 1 - x

    study = mlkit.tune.tune(
        objective, 6, ["minimize", "maximize"], study_name="multi", progress=False, track=False
    )
    assert states(study) == {"COMPLETE": 6}
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert len(study.best_trials) >= 1


def test_timeout_stops_starting_new_trials(cluster):
    def objective(trial):
        import time

        time.sleep(0.3)
        return trial.suggest_float("x", 0, 1)

    study = mlkit.tune.tune(
        objective, 200, study_name="timeout", timeout=1.0, progress=False, track=False
    )
    n = len(study.trials)
    assert 1 <= n < 200
    assert states(study) == {"COMPLETE": n}  # running trials finished, none left RUNNING
    assert "timeout" in study.progress.message


def test_dask_storage_keeps_the_study_in_the_scheduler(cluster):
    study = mlkit.tune.tune(
        quadratic, 6, study_name="in-dask", storage="dask", progress=False, track=False
    )
    assert states(study) == {"COMPLETE": 6}
    assert type(study._storage).__name__ == "DaskStorage"
    again = mlkit.tune.tune(
        quadratic, 2, study_name="in-dask", storage="dask", progress=False, track=False
    )
    assert len(again.trials) == 8
    assert not default_journal_path().exists()


def test_journal_file_path_storage(cluster, tmp_path):
    path = tmp_path / "shared" / "studies.log"
    path.parent.mkdir()
    study = mlkit.tune.tune(
        quadratic, 3, study_name="onpath", storage=str(path), progress=False, track=False
    )
    assert states(study) == {"COMPLETE": 3}
    assert path.stat().st_size > 0
    assert mlkit.tune.open_study("onpath", storage=str(path)).best_value == study.best_value


def test_text_progress_outside_a_kernel(cluster, capsys):
    study = mlkit.tune.tune(quadratic, 3, study_name="text", track=False)
    err = capsys.readouterr().err
    assert "text" in err and "3/3" in err and "best=" in err
    assert str(study).startswith("text: 3/3 trials | 3 complete | best ")


def test_open_study_errors_name_what_exists(cluster):
    mlkit.tune.tune(quadratic, 1, study_name="exists", progress=False, track=False)
    with pytest.raises(TuneError, match=r"no study 'nope'.*'exists'"):
        mlkit.tune.open_study("nope")


def test_client_mode_runs_trials_in_threads_here(cluster):
    import threading

    lock = threading.Lock()  # would not pickle: fine, nothing is sent anywhere

    def objective(trial):
        with lock:
            trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("thread", threading.current_thread().name)
        return quadratic(trial)

    memory = optuna.storages.InMemoryStorage()  # fine here: the trials run in this process
    study = mlkit.tune.tune(
        objective,
        4,
        study_name="here",
        storage=memory,
        on="client",
        concurrency=2,
        progress=False,
        track=False,
    )
    assert states(study) == {"COMPLETE": 4}
    assert {t.user_attrs["pid"] for t in study.trials} == {os.getpid()}
    assert all(t.user_attrs["thread"].startswith("mlkit-tune") for t in study.trials)
    assert {t.system_attrs["mlkit.worker"] for t in study.trials} == {"client"}
    assert len(optuna.load_study(study_name="here", storage=memory).trials) == 4


def test_objective_capturing_data_is_sent_once_per_worker(cluster):
    import numpy as np

    data = np.arange(500_000, dtype="float64")  # 4 MB captured by the objective

    def objective(trial):
        k = trial.suggest_int("k", 0, len(data) - 1)
        return float(data[k])

    study = mlkit.tune.tune(objective, 6, study_name="big", progress=False, track=False)
    assert states(study) == {"COMPLETE": 6}
    assert all(t.value == t.params["k"] for t in study.trials)

    def scattered(dask_scheduler):
        return [k for k in dask_scheduler.tasks if str(k).startswith("bytes-")]

    # released at the end (releasing is asynchronous)
    wait_until_false(lambda: cluster.client.run_on_scheduler(scattered), what="scattered released")
