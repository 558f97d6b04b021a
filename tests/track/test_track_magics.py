"""`%mlscale track | models | register | promote` through a real InteractiveShell."""

from __future__ import annotations

import mlflow
import pytest
from IPython.core.error import UsageError

import mlkit


def test_track_on_off_switches_mlkit_automatic_runs(shell, capsys):
    state = shell.run_line_magic("mlscale", "track on --experiment churn")
    assert state.enabled and state.experiment == "churn"
    assert mlkit.track.enabled()
    assert mlflow.get_experiment_by_name("churn") is not None  # created right away

    # An mlkit API's own run goes to the chosen experiment while tracking is on ...
    with mlkit.track.run("auto-on", auto=True) as r:
        assert r is not None
    assert mlflow.get_run(r.info.run_id).info.experiment_id == (
        mlflow.get_experiment_by_name("churn").experiment_id)

    # ... and is skipped while it is off; a run the user asks for is still recorded.
    state = shell.run_line_magic("mlscale", "track off")
    assert not state.enabled and not mlkit.track.enabled()
    with mlkit.track.run("auto-off", auto=True) as skipped:
        assert skipped is None
        assert mlflow.active_run() is None
    with mlkit.track.run("explicit") as kept:
        pass
    names = {r.info.run_name for r in mlflow.search_runs(experiment_names=["churn"],
                                                          output_format="list")}
    assert names == {"auto-on", "explicit"}
    assert mlflow.get_run(kept.info.run_id).info.status == "FINISHED"

    shown = shell.run_line_magic("mlscale", "track")
    assert str(shown).startswith("tracking off")
    shell.run_line_magic("mlscale", "track on")  # keeps the experiment chosen before
    assert str(mlkit.track.status()).startswith("tracking on: experiment 'churn' in sqlite:///")


def test_tracking_can_start_off_from_the_environment(monkeypatch):
    monkeypatch.setenv("MLKIT_TRACK", "0")
    assert not mlkit.track.enabled()
    monkeypatch.setenv("MLKIT_TRACK", "maybe")
    with pytest.raises(mlkit.exceptions.ConfigError, match="MLKIT_TRACK must be 1 or 0"):
        mlkit.track.enabled()


@pytest.mark.parametrize(
    "line, text",
    [
        ("track sideways", "invalid choice: 'sideways'"),
        ("track off --experiment x", "--experiment goes with 'track on'"),
        ("track on --experiment", "expected one argument"),
        ("promote nope 1", "no registered model 'nope'"),
        ("models nope", "no registered model 'nope'"),
        ("register " + "0" * 32 + " m", "no run with id"),
        ("register", "the following arguments are required: model, name"),
    ],
)
def test_mistakes_are_one_line_usage_errors(shell, line, text):
    with pytest.raises(UsageError, match=text):
        shell.run_line_magic("mlscale", line)
    assert mlkit.track.enabled()  # a failed `track on` leaves the switch alone


def test_register_promote_and_list_from_the_notebook(shell, capsys):
    with mlkit.track.run("fit", experiment="magic") as r:
        mlflow.pyfunc.log_model(name="model", python_model=_Identity(), pip_requirements=["mlflow"])
    v = shell.run_line_magic("mlscale", f"register {r.info.run_id} churn")
    assert (v.version, v.aliases) == (1, ("candidate",))
    promoted = shell.run_line_magic("mlscale", "promote churn candidate --alias champion")
    assert promoted.aliases == ("candidate", "champion")
    listed = shell.run_line_magic("mlscale", "models")
    assert [(m.name, m.version, m.aliases) for m in listed] == [
        ("churn", 1, ("candidate", "champion"))]


class _Identity(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def test_help_lists_the_tracking_subcommands(shell, capsys):
    shell.run_line_magic("mlscale", "help")
    out = capsys.readouterr().out
    for name in ("track", "models", "register", "promote"):
        assert f"%mlscale {name}" in out
