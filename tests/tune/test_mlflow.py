"""MLflow: one parent run per study, one nested child per trial, best on the parent, registry."""

from __future__ import annotations

import json

import mlflow
import pytest

import mlkit


def objective(trial):
    x = trial.suggest_int("x", 0, 20)
    if trial.number == 3:
        raise ValueError("bad luck")
    return float((x - 7) ** 2)


def _children(parent_id):
    return mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )


def test_parent_and_child_runs(cluster):
    study = mlkit.tune.tune(objective, 6, study_name="tracked", experiment="tuning", progress=False)
    parent = mlflow.get_run(study.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "tracked"
    assert mlflow.get_experiment(parent.info.experiment_id).name == "tuning"
    assert parent.data.params["direction"] == "minimize"
    assert parent.data.params["sampler"] == "TPESampler"
    best = study.best_trial
    assert parent.data.metrics["best_value"] == best.value
    # the history steps are the finish order (trials on 2 workers finish out of number order):
    # in step order the running best only improves, and ends at the study's best
    history = mlflow.MlflowClient().get_metric_history(parent.info.run_id, "best_value")
    values = [m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))]
    assert values == sorted(values, reverse=True) and values[-1] == best.value
    assert parent.data.tags["mlkit.best_trial"] == str(best.number)
    assert parent.data.tags["best.x"] == str(best.params["x"])
    assert parent.data.tags["mlkit.n_complete"] == "5" and parent.data.tags["mlkit.n_fail"] == "1"
    stored = json.loads(mlflow.artifacts.load_text(f"{parent.info.artifact_uri}/best_trial.json"))
    assert stored == {"number": best.number, "value": best.value, "params": best.params}

    children = _children(study.mlflow_run_id)
    assert len(children) == 6
    workers = set(cluster.client.scheduler_info(n_workers=-1)["workers"])
    by_number = {int(r["tags.optuna.trial_number"]): r for _, r in children.iterrows()}
    for t in study.trials:
        run = by_number[t.number]
        assert run["tags.mlflow.runName"] == f"trial-{t.number}"
        assert run["params.x"] == str(t.params["x"])
        assert run["tags.mlkit.worker"] in workers
        assert run["tags.optuna.state"] == t.state.name
        assert run["metrics.duration_s"] >= 0
        if t.number == 3:
            assert run["status"] == "FAILED"
            assert run["tags.mlkit.fail_reason"] == "ValueError: bad luck"
        else:
            assert run["status"] == "FINISHED"
            assert run["metrics.value"] == t.value


def test_continuing_a_study_continues_its_parent_run(cluster):
    first = mlkit.tune.tune(objective, 2, study_name="again", progress=False)
    second = mlkit.tune.tune(objective, 3, study_name="again", progress=False)
    assert second.mlflow_run_id == first.mlflow_run_id
    assert len(_children(first.mlflow_run_id)) == 5
    assert mlflow.get_run(first.mlflow_run_id).info.status == "FINISHED"


def test_track_false_records_nothing(cluster, mlkit_home):
    study = mlkit.tune.tune(objective, 2, study_name="quiet", track=False, progress=False)
    assert study.mlflow_run_id is None
    assert not (mlkit_home / "mlflow").exists()


def test_intermediate_values_are_logged_as_steps(cluster):
    def reporting(trial):
        x = trial.suggest_float("x", 0, 1)
        for step in range(4):
            trial.report(x * step, step)
        return x

    study = mlkit.tune.tune(reporting, 2, study_name="steps", progress=False)
    client = mlflow.MlflowClient()
    run_id = _children(study.mlflow_run_id)["run_id"].iloc[0]
    history = client.get_metric_history(run_id, "intermediate_value")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]


@pytest.mark.slow
def test_register_best_registers_the_model_the_best_trial_logged(cluster):
    def with_model(trial):
        import mlflow
        import mlflow.pyfunc

        class Constant(mlflow.pyfunc.PythonModel):
            def __init__(self, c):
                self.c = c

            def predict(self, context, model_input, params=None):
                return [self.c] * len(model_input)

        c = trial.suggest_float("c", 0, 1)
        # explicit requirements: skip MLflow's slow inference of them
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Constant(c), pip_requirements=["mlflow"]
        )
        trial.set_user_attr("model_uri", info.model_uri)
        return c

    study = mlkit.tune.tune(with_model, 2, "maximize", study_name="models", progress=False)
    best = study.best_trial
    assert study.best_model_uri() == best.user_attrs["model_uri"]
    import pandas as pd

    assert list(study.best_model().predict(pd.DataFrame({"a": [1, 2]}))) == [best.value] * 2
    version = study.register_best("tuned-constant")
    assert str(version.version) == "1"
    mv = mlflow.MlflowClient().get_model_version("tuned-constant", str(version.version))
    assert mv.tags["mlkit.study"] == "models" and mv.tags["mlkit.trial"] == str(best.number)
    parent = mlflow.get_run(study.mlflow_run_id)
    assert parent.data.tags["mlkit.best_model_uri"] == best.user_attrs["model_uri"]
