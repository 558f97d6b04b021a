"""A study whose trials run on workers that do not share the client's disk."""

from __future__ import annotations


def test_default_storage_is_one_every_worker_reaches(session, scheduler, net):
    got = session.ok(
        "import mlkit\n"
        f"cluster = mlkit.cluster.connect({scheduler!r})\n"
        "def objective(trial):\n"
        "    import socket\n"
        "    trial.set_user_attr('host', socket.gethostname())\n"
        "    x = trial.suggest_float('x', -4, 4)\n"
        "    return (x - 1) ** 2\n"
        "study = mlkit.tune.tune(objective, n_trials=12, study_name='remote', progress=False,"
        " track=False)\n"
        "again = mlkit.tune.open_study('remote')",
        "[[t.state.name for t in study.trials], sorted({t.user_attrs['host'] for t in"
        " study.trials}), study.storage_description, len(again.trials)]")
    states, hosts, where, reopened = got
    assert states == ["COMPLETE"] * 12, states  # not 48 FAILs with 'Record does not exist'
    assert hosts == ["worker1", "worker2"]
    assert "DaskStorage" in where and reopened == 12
    # No per-host journal was written anywhere.
    for h in ("client", "worker1", "worker2"):
        assert "optuna" not in net[h].run(["ls", "/tmp/work/.mlkit"]).stdout, h


def test_a_client_only_journal_is_refused_before_any_trial(session, scheduler):
    out = session.run(
        "import mlkit\n"
        f"cluster = mlkit.cluster.connect({scheduler!r})\n"
        "mlkit.tune.tune(lambda t: t.suggest_float('x', 0, 1), n_trials=4,"
        " storage='/tmp/work/journal.log', progress=False, track=False)")
    assert out["type"] == "ClientOnlyPathError", out
    assert "'/tmp/work/journal.log'" in out["message"] and "storage='dask'" in out["message"]
