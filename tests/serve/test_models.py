"""Model references: names and resolution (registry lookups against the session's store)."""

from __future__ import annotations

import pytest

from mlkit.serve._models import default_name, resolve


def test_default_names():
    assert default_name("models:/iris@champion") == "iris-champion"
    assert default_name("models:/iris/3") == "iris-3"
    assert default_name("runs:/0123456789abcdef/model") == "run-01234567"
    assert default_name("/some/where/my model/") == "my-model"


def test_resolve_pins_aliases_to_a_storage_location(demo):
    ref = resolve(demo.alias_uri, demo.tracking_uri)
    assert ref.pinned == f"models:/demo/{demo.version}" and ref.version == demo.version
    assert ref.location.startswith("file://") and not ref.local
    latest = resolve("models:/demo/latest", demo.tracking_uri)
    assert latest.version is not None and int(latest.version) >= 1
    local = resolve(f"file://{demo.local_path}", demo.tracking_uri)
    assert local.local and local.location == demo.local_path


def test_resolve_runs_uri_finds_the_logged_model(demo):
    import mlflow

    mv = mlflow.MlflowClient(demo.tracking_uri).get_model_version("demo", demo.version)
    ref = resolve(f"runs:/{mv.run_id}/model", demo.tracking_uri)
    assert ref.location.endswith("/artifacts") and "models/m-" in ref.location


def test_resolve_refuses_non_models(demo, tmp_path):
    from mlkit.exceptions import ServeError

    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ServeError, match="has no MLmodel file"):
        resolve(tmp_path / "not-a-model", demo.tracking_uri)
    with pytest.raises(ServeError, match="model must be a model URI or a path"):
        resolve(42, demo.tracking_uri)
