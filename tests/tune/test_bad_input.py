"""Bad input: one clear TuneError each, before any trial starts, with nothing written."""

from __future__ import annotations

import hashlib

import optuna
import pytest

import mlkit
from mlkit.exceptions import MlkitError, TuneError
from mlkit.tune._storage import default_journal_path


def objective(trial):
    return trial.suggest_float("x", 0, 1)


@pytest.fixture(autouse=True)
def _no_warm_up(monkeypatch):
    # When this module starts the cluster, its warm-up would create the MLflow store in the
    # test's home (on purpose, see mlkit/cluster/_warm.py): that is not the call under test.
    monkeypatch.setenv("MLKIT_WARM", "0")


def _nothing_written(home):
    assert not default_journal_path().exists(), "the study journal was created"
    assert not (home / "mlflow").exists(), "an MLflow store was created"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_trials": 0}, r"n_trials must be a positive integer, but got n_trials=0"),
        ({"n_trials": -3}, r"n_trials=-3"),
        ({"n_trials": 2.5}, r"n_trials=2.5"),
        ({"n_trials": True}, r"n_trials=True"),
        ({"objective": 42}, r"objective must be a function taking one argument.*int 42"),
        ({"objective": lambda: 1.0}, r"cannot be called as <lambda>\(trial\)"),
        ({"objective": lambda trial, extra: 1.0}, r"must take exactly one argument"),
        ({"direction": "up"}, r"direction must be 'minimize' or 'maximize'.*'up'"),
        ({"direction": ["minimize", "sideways"]}, r"'sideways'"),
        ({"timeout": 0}, r"timeout must be a positive number"),
        ({"concurrency": 0}, r"concurrency must be a positive integer"),
        ({"catch": "ValueError"}, r"catch must be an exception class"),
        ({"on": "gpu"}, r"on must be 'workers'"),
        ({"study_name": "has space"}, r"study_name must be"),
        ({"retries": -1}, r"retries must be an integer >= 0"),
        ({"sampler": "tpe"}, r"sampler must be an Optuna sampler"),
        ({"pruner": 3}, r"pruner must be an Optuna pruner"),
        ({"experiment": ""}, r"experiment must be a non-empty MLflow experiment name"),
        ({"storage": "bogus://x"}, r"unknown scheme 'bogus'"),
        ({"storage": optuna.storages.InMemoryStorage()}, r"InMemoryStorage lives in this process"),
    ],
)
def test_bad_arguments_raise_one_clear_error(cluster, mlkit_home, kwargs, match):
    args = {"objective": objective, "n_trials": 2, "progress": False, **kwargs}
    with pytest.raises(TuneError, match=match):
        mlkit.tune.tune(**args)
    _nothing_written(mlkit_home)


def test_tune_error_is_an_mlkit_error():
    assert issubclass(TuneError, MlkitError)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sqlite:////no/such/folder/optuna.db", r"cannot reach the storage .*/no/such/folder"),
        ("postgresql://user:secret@127.0.0.1:1/optuna", r"storage postgresql://user:\*\*\*@127"),
        ("mysql://root@127.0.0.1:1/optuna", r"mysql://root@127.0.0.1:1/optuna"),
    ],
)
def test_unreachable_storage_url(cluster, mlkit_home, url, match):
    with pytest.raises(TuneError, match=match) as info:
        mlkit.tune.tune(objective, 2, storage=url, progress=False)
    assert "secret" not in str(info.value)  # passwords are not echoed
    _nothing_written(mlkit_home)


def test_missing_journal_folder(cluster, mlkit_home, tmp_path):
    with pytest.raises(TuneError, match=r"folder .*nowhere does not exist"):
        mlkit.tune.tune(objective, 2, storage=str(tmp_path / "nowhere" / "j.log"), progress=False)
    assert not (tmp_path / "nowhere").exists()
    _nothing_written(mlkit_home)


def test_existing_study_with_other_direction_is_refused_untouched(cluster, mlkit_home):
    study = mlkit.tune.tune(objective, 2, "minimize", study_name="dir", progress=False)
    journal = default_journal_path()
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    import mlflow

    runs_before = len(mlflow.search_runs(search_all_experiments=True))
    with pytest.raises(
        TuneError,
        match=r"study 'dir' already exists .* direction 'minimize', but direction='maximize'",
    ):
        mlkit.tune.tune(objective, 2, "maximize", study_name="dir", progress=False)
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs_before
    assert len(study.trials) == 2


def test_unpicklable_objective_is_refused_before_the_study_exists(cluster, mlkit_home):
    import threading

    lock = threading.Lock()

    def objective_with_lock(trial):
        with lock:
            return trial.suggest_float("x", 0, 1)

    with pytest.raises(TuneError, match=r"cannot be sent to the workers"):
        mlkit.tune.tune(objective_with_lock, 2, study_name="lock", progress=False)
    _nothing_written(mlkit_home)


def test_registry_hooks_explain_what_is_missing(cluster):
    study = mlkit.tune.tune(objective, 2, study_name="nomodel", progress=False, track=False)
    with pytest.raises(TuneError, match=r"stored no model.*set_user_attr\('model_uri'"):
        study.register_best("m")
    with pytest.raises(TuneError, match=r"has no trial number 99"):
        mlkit.tune.best_model_uri(study, trial=99)
