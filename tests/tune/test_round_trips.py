"""What a trial costs the storage on its worker: over DaskStorage each call is a round trip to
the scheduler, made between two trials (on the multi-host cluster: 43 ms of every 0.25 s trial
went to mlkit, most of it these calls)."""

from __future__ import annotations

import collections

import optuna

import mlkit

COUNTED = ("get_trial", "get_all_trials", "get_study_id_from_name", "get_study_directions",
           "set_trial_state_values", "set_trial_system_attr", "set_trial_param")


def _count_dask_storage_calls() -> bool:
    """On a worker: count every DaskStorage call made from now on (in builtins: one counter
    per process, whatever module imports the class)."""
    import builtins

    from optuna_integration.dask import DaskStorage

    calls = collections.Counter()
    builtins._mlkit_test_calls = calls
    for name in COUNTED:
        original = getattr(DaskStorage, name)
        if hasattr(original, "_counted"):
            original = original._counted

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        counted._counted = original
        setattr(DaskStorage, name, counted)
    return True


def _restore() -> dict:
    import builtins

    from optuna_integration.dask import DaskStorage

    for name in COUNTED:
        f = getattr(DaskStorage, name)
        if hasattr(f, "_counted"):
            setattr(DaskStorage, name, f._counted)
    return dict(builtins.__dict__.pop("_mlkit_test_calls", {}))


def _objective(trial):
    return trial.suggest_float("x", -1, 1) ** 2


def test_a_trial_asks_the_storage_nothing_the_driver_already_knows(cluster):
    client = cluster.client
    client.run(_count_dask_storage_calls)
    try:
        study = mlkit.tune.tune(_objective, 6, storage="dask", progress=False, track=False,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    finally:
        per_worker = client.run(_restore)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    calls = sum((collections.Counter(c) for c in per_worker.values()), collections.Counter())
    # The study's id and directions come with the payload; the trial is not read before it
    # is started (the start itself tells whether it was still WAITING) nor after it is told
    # (the driver reads it, off the worker's path).
    assert calls["get_study_id_from_name"] == 0 and calls["get_study_directions"] == 0, calls
    assert calls["set_trial_state_values"] == 12, calls  # RUNNING, then the result
    assert calls["get_trial"] <= 3 * 6, calls  # optuna.Trial(), study.tell, the sampler
    assert sum(calls.values()) <= 8 * 6, calls  # 13.5 per trial before
