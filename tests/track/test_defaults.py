"""Tracking defaults and runs that always end in a final state, against a real SQLite store."""

from __future__ import annotations

import sqlite3

import mlflow
import pytest

import mlkit
from mlkit.exceptions import ConfigError, TrackingError


def _runs(experiment: str | None = None):
    client = mlflow.MlflowClient(mlkit.track.tracking_uri())
    if experiment:
        exps = [client.get_experiment_by_name(experiment)]
    else:
        exps = client.search_experiments()
    return client.search_runs([e.experiment_id for e in exps if e is not None])


def test_default_store_is_sqlite_in_the_home_in_wal_mode(mlkit_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = mlkit.track.configure("defaults")
    db = mlkit_home / "mlflow" / "mlflow.db"
    assert uri == f"sqlite:///{db}"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with mlkit.track.run("r") as r:
        mlflow.log_text("hello", "note.txt")
    with mlkit.track.run("in-default", experiment=None) as r0:
        pass
    # Artifacts live beside the database, for mlkit's experiments and MLflow's Default one alike.
    exp = mlflow.get_experiment_by_name("defaults")
    assert exp.artifact_location == (mlkit_home / "mlflow" / "artifacts" / "defaults").as_uri()
    assert (mlkit_home / "mlflow" / "artifacts" / "defaults" / r.info.run_id / "artifacts"
            / "note.txt").read_text() == "hello"
    assert mlflow.get_experiment("0").artifact_location.startswith(
        (mlkit_home / "mlflow" / "artifacts").as_uri())
    assert r0.info.experiment_id == exp.experiment_id  # the active experiment stays
    assert not (tmp_path / "mlruns").exists()


def test_mlflow_tracking_uri_wins(tmp_path, mlkit_home, monkeypatch):
    other = tmp_path / "elsewhere" / "team.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    assert mlkit.track.configure() == f"sqlite:///{other}"
    with mlkit.track.run("r", experiment="shared"):
        pass
    assert other.exists()
    assert not (mlkit_home / "mlflow" / "mlflow.db").exists()
    # ... and a SQLite store named that way keeps its artifacts beside it.
    assert mlflow.get_experiment_by_name("shared").artifact_location == (
        tmp_path / "elsewhere" / "artifacts" / "shared").as_uri()


def test_run_finishes_with_params_and_lineage_tags(git_repo):
    repo, git = git_repo
    with mlkit.track.run("fit", experiment="e", params={"lr": 0.1, "depth": 6},
                         tags={"team": "risk"}) as r:
        mlflow.log_metric("loss", 0.25)
    got = mlflow.get_run(r.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "fit"
    assert got.data.params == {"lr": "0.1", "depth": "6"}
    assert got.data.metrics == {"loss": 0.25}
    assert got.data.tags["team"] == "risk"
    assert got.data.tags["mlkit.git.commit"] == git("rev-parse", "HEAD")
    assert got.data.tags["mlkit.git.dirty"] == "false"
    assert got.data.tags["mlkit.pkg.mlflow"] == mlflow.__version__


def test_exception_marks_the_run_failed_and_propagates():
    with pytest.raises(ZeroDivisionError):
        with mlkit.track.run("boom", experiment="e") as r:
            mlflow.log_metric("step", 1)
            1 / 0  # noqa: B018
    assert mlflow.get_run(r.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_keyboard_interrupt_marks_the_run_killed():
    with pytest.raises(KeyboardInterrupt):
        with mlkit.track.run("stopped", experiment="e") as r:
            raise KeyboardInterrupt
    assert mlflow.get_run(r.info.run_id).info.status == "KILLED"
    assert mlflow.active_run() is None


def test_runs_the_body_left_open_are_ended_too():
    with pytest.raises(RuntimeError):
        with mlkit.track.run("outer", experiment="e") as outer:
            inner = mlflow.start_run(run_name="forgotten", nested=True)
            raise RuntimeError("lost worker")
    assert mlflow.get_run(outer.info.run_id).info.status == "FAILED"
    assert mlflow.get_run(inner.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None
    assert {r.info.status for r in _runs("e")} == {"FAILED"}


def test_nests_under_an_active_run_and_leaves_the_parent_open():
    with mlkit.track.run("study", experiment="e") as parent:
        with mlkit.track.run("trial-0") as child:
            pass
        assert mlflow.active_run().info.run_id == parent.info.run_id
        assert mlflow.get_run(child.info.run_id).info.status == "FINISHED"
        child_tags = mlflow.get_run(child.info.run_id).data.tags
        assert child_tags["mlflow.parentRunId"] == parent.info.run_id
    assert mlflow.get_run(parent.info.run_id).info.status == "FINISHED"


def test_nested_false_under_an_active_run_is_refused_before_writing():
    with mlkit.track.run("first", experiment="e"):
        with pytest.raises(TrackingError, match="still active"):
            with mlkit.track.run("second", nested=False):
                pass
    assert [r.info.run_name for r in _runs("e")] == ["first"]


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"tags": ["a"]}, "tags must be a dict"),
        ({"params": {"": 1}}, "params names must be non-empty strings"),
        ({"experiment": ""}, "experiment must be a non-empty string"),
        ({"name": 3}, "name must be a non-empty string"),
    ],
)
def test_bad_arguments_raise_one_clear_error_and_write_nothing(kwargs, text, mlkit_home):
    with pytest.raises(ConfigError, match=text):
        with mlkit.track.run(**kwargs):
            pass
    if (mlkit_home / "mlflow" / "mlflow.db").exists():
        assert _runs() == []


def test_a_new_home_gets_a_fresh_store(tmp_path, monkeypatch):
    with mlkit.track.run("a", experiment="only-in-first-home"):
        pass
    monkeypatch.setenv("MLKIT_HOME", str(tmp_path / "second-home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # MLflow exported the first store's URI
    with mlkit.track.run("b") as r:  # the first store's experiment id must not leak here
        pass
    assert mlflow.get_run(r.info.run_id).info.status == "FINISHED"
    assert mlkit.track.tracking_uri().startswith(f"sqlite:///{tmp_path / 'second-home'}")


def test_a_deleted_experiment_is_a_clear_error():
    mlkit.track.configure("gone")
    client = mlflow.MlflowClient(mlkit.track.tracking_uri())
    client.delete_experiment(client.get_experiment_by_name("gone").experiment_id)
    with pytest.raises(TrackingError, match="experiment 'gone' was deleted; restore it"):
        with mlkit.track.run("x", experiment="gone"):
            pass


def test_a_home_deleted_during_the_session_is_prepared_again(mlkit_home):
    import shutil

    with mlkit.track.run("before", experiment="e"):
        pass
    shutil.rmtree(mlkit_home)
    with mlkit.track.run("after", experiment="e") as r:
        pass
    assert mlflow.get_run(r.info.run_id).info.status == "FINISHED"
    db = sqlite3.connect(mlkit_home / "mlflow" / "mlflow.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # The run is in the new file (not in the deleted one MLflow's pooled connections held).
    assert db.execute("SELECT name, status FROM runs").fetchall() == [("after", "FINISHED")]


def test_lock_errors_are_retried_and_others_are_not():
    from mlkit.track._store import is_locked_error, retry_locked

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            try:
                raise sqlite3.OperationalError("database is locked")
            except sqlite3.OperationalError as exc:  # as MLflow wraps it
                raise mlflow.exceptions.MlflowException("write failed") from exc
        return "written"

    assert retry_locked(flaky, first_delay=0.01) == "written" and len(calls) == 3
    assert is_locked_error(mlflow.exceptions.MlflowException("x").with_traceback(None)) is False

    def broken():
        calls.append(1)
        raise ValueError("not a lock problem")

    calls.clear()
    with pytest.raises(ValueError):
        retry_locked(broken, first_delay=0.01)
    assert len(calls) == 1
