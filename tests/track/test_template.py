"""A new SQLite store is a copy of one migrated empty store (mlkit.track._template)."""

from __future__ import annotations

import sqlite3

import pytest


def _experiments(db):
    con = sqlite3.connect(db)
    try:
        sql = "SELECT experiment_id, name, artifact_location FROM experiments"
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MLKIT_CACHE_DIR", str(folder))
    return folder


def test_a_new_store_is_the_template_with_its_own_default_experiment(cache, mlkit_home):
    import mlflow

    from mlkit import track
    from mlkit.track._store import artifact_root_for

    uri = track.configure("template-tests")
    built = list(cache.glob("mlflow-*-empty-store.db"))
    assert [p.name for p in built] == [f"mlflow-{mlflow.__version__}-empty-store.db"]
    assert _experiments(built[0]) == []  # nothing of any store's in the template
    rows = dict((name, loc) for _, name, loc in _experiments(mlkit_home / "mlflow" / "mlflow.db"))
    root = artifact_root_for(uri)
    assert rows["Default"].startswith(root) and "template-tests" in rows
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("template-tests").experiment_id
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_a_second_store_copies_the_template_without_rebuilding_it(cache, tmp_path, monkeypatch):
    from mlkit import track

    monkeypatch.setenv("MLKIT_HOME", str(tmp_path / "one"))
    track.configure("a")
    template = next(cache.glob("mlflow-*-empty-store.db"))
    stamp = template.stat().st_mtime_ns
    monkeypatch.setenv("MLKIT_HOME", str(tmp_path / "two"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # MLflow set it to the first store
    track.configure("b")
    assert template.stat().st_mtime_ns == stamp
    names = {name for _, name, _ in _experiments(tmp_path / "two" / "mlflow" / "mlflow.db")}
    assert names == {"Default", "b"}  # the first store's experiment did not travel


def test_an_unwritable_cache_falls_back_to_mlflows_own_creation(tmp_path, monkeypatch,
                                                                 mlkit_home):
    from mlkit import track

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MLKIT_CACHE_DIR", str(blocker / "cache"))
    uri = track.configure("fallback")
    import mlflow

    assert mlflow.MlflowClient(uri).get_experiment_by_name("fallback") is not None
    names = {n for _, n, _ in _experiments(mlkit_home / "mlflow" / "mlflow.db")}
    assert names == {"Default", "fallback"}
