"""Model registry helpers against a real SQLite registry, with real logged pyfunc models."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import ConfigError, TrackingError


class Doubler(mlflow.pyfunc.PythonModel):
    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def predict(self, context, model_input, params=None):
        return model_input["x"] * self.factor


def _logged_run(factor: float = 2.0, models: int = 1):
    with mlkit.track.run("fit", experiment="registry") as r:
        # Explicit requirements: MLflow would otherwise infer them in a subprocess (slow).
        infos = [mlflow.pyfunc.log_model(name=f"model{i}", python_model=Doubler(factor),
                                         pip_requirements=["mlflow"])
                 for i in range(models)]
    return r.info.run_id, infos


@pytest.fixture
def two_runs():
    return _logged_run(2.0), _logged_run(3.0)


def test_register_promote_and_serve_by_alias(two_runs):
    (run_a, _), (_, infos_b) = two_runs
    v1 = mlkit.track.register(run_a, "doubler")  # a run id: its one logged model
    assert (v1.name, v1.version, v1.aliases, v1.run_id) == ("doubler", 1, ("candidate",), run_a)
    assert v1.uri == "models:/doubler/1"

    v2 = mlkit.track.register(infos_b[0].model_uri, "doubler", alias="challenger")
    assert (v2.version, v2.aliases) == (2, ("challenger",))

    champion = mlkit.track.promote("doubler", 1)
    assert champion.aliases == ("candidate", "champion")
    frame = pd.DataFrame({"x": [1.0, 5.0]})
    served = mlflow.pyfunc.load_model("models:/doubler@champion")
    assert served.predict(frame).tolist() == [2.0, 10.0]

    # Promoting by alias moves "champion": version 1 loses it, the served model changes.
    moved = mlkit.track.promote("doubler", "challenger")
    assert moved.version == 2 and moved.aliases == ("challenger", "champion")
    served = mlflow.pyfunc.load_model("models:/doubler@champion")
    assert served.predict(frame).tolist() == [3.0, 15.0]

    listed = mlkit.track.list_models()
    assert [(v.name, v.version, v.aliases) for v in listed] == [
        ("doubler", 2, ("challenger", "champion")),
        ("doubler", 1, ("candidate",)),
    ]
    assert mlkit.track.list_models("doubler") == listed
    with pytest.warns(DeprecationWarning, match="list_models"):  # the old name still answers
        assert mlkit.track.models() == listed
    html = listed._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 3 and "challenger, champion" in html
    text = str(listed).splitlines()
    assert text[0].split() == ["model", "version", "aliases", "run", "status", "created"]
    frame = listed.to_pandas()
    assert frame["version"].tolist() == [2, 1] and frame["aliases"].tolist()[1] == ["candidate"]


def test_register_accepts_runs_uris_runs_and_model_info(two_runs):
    (run_a, infos_a), (run_b, _) = two_runs
    assert mlkit.track.register(f"runs:/{run_a}/model0", "m", alias=None).aliases == ()
    assert mlkit.track.register(f"runs:/{run_b}", "m").run_id == run_b
    assert mlkit.track.register(mlflow.get_run(run_a), "m").version == 3
    assert mlkit.track.register(infos_a[0], "m").version == 4
    assert [v.version for v in mlkit.track.list_models("m")] == [4, 3, 2, 1]


def test_a_run_with_several_models_asks_which_one():
    run_id, infos = _logged_run(models=2)
    with pytest.raises(TrackingError, match="logged 2 models; pass the one to register: models:/"):
        mlkit.track.register(run_id, "many")
    assert mlkit.track.register(infos[1].model_uri, "many").version == 1


@pytest.mark.parametrize(
    "model, name, alias, error, text",
    [
        ("0" * 32, "m", "candidate", TrackingError, "no run with id '0{32}'"),
        ("runs:/" + "1" * 32 + "/model", "m", "candidate", TrackingError, "no run with id"),
        ("models:/m-" + "2" * 32, "m", "candidate", TrackingError, "no logged model 'm-2"),
        ("s3://bucket/model", "m", "candidate", ConfigError, "pass a models:/ URI, a runs:/"),
        (42, "m", "candidate", ConfigError, "models:/ or runs:/ URI, a run id or a run"),
        ("RUN", "a/b", "candidate", ConfigError, "cannot contain '/' or ':'"),
        ("RUN", "m", "latest", ConfigError, "alias 'latest' is reserved"),
        ("RUN", "m", "v2", ConfigError, "alias 'v2' is reserved"),
        ("RUN", "m", "my alias", ConfigError, "letters, digits"),
    ],
)
def test_bad_register_input_is_refused_before_anything_is_written(model, name, alias, error, text):
    # "RUN" stands for a run id that is never looked up: names are checked first.
    with pytest.raises(error, match=text):
        mlkit.track.register("a" * 32 if model == "RUN" else model, name, alias=alias)
    assert mlkit.track.list_models() == []


def test_a_run_without_a_model(tmp_path):
    with mlkit.track.run("no-model", experiment="registry") as r:
        mlflow.log_metric("loss", 1.0)
    with pytest.raises(TrackingError, match=f"run {r.info.run_id} has no logged model"):
        mlkit.track.register(r.info.run_id, "m")
    assert mlkit.track.list_models() == []


def test_promote_and_models_name_what_exists(two_runs):
    (run_a, _), _ = two_runs
    mlkit.track.register(run_a, "doubler")
    with pytest.raises(TrackingError, match="model 'tripler'; registered models: doubler"):
        mlkit.track.promote("tripler", 1)
    with pytest.raises(TrackingError, match="'doubler' has no version 7; versions: 1"):
        mlkit.track.promote("doubler", 7)
    with pytest.raises(TrackingError, match="'doubler' has no alias 'best'; aliases: candidate"):
        mlkit.track.promote("doubler", "best")
    with pytest.raises(TrackingError, match="no registered model 'nope'"):
        mlkit.track.list_models("nope")
    assert mlkit.track.list_models("doubler")[0].aliases == ("candidate",)  # nothing moved
