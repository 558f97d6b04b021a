"""``mlkit serve dockerfile``: MLflow's generator writes a build context (no Docker engine)."""

from __future__ import annotations

import pytest


def _copied_model(out):
    """The model folder the Dockerfile copies into the image (MLflow names it)."""
    import re

    match = re.search(r"^COPY (\S+) /opt/ml/model$", (out / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile copies no model"
    folder = out / match.group(1)
    assert folder.is_relative_to(out / "model_dir") and (folder / "MLmodel").is_file()
    return folder


def test_dockerfile_build_context(demo, at_serve_home, tmp_path):
    import yaml
    from mlflow.models import Model

    import mlkit

    out = mlkit.serve.dockerfile(demo.alias_uri, tmp_path / "ctx")
    assert out == tmp_path / "ctx"
    dockerfile = (out / "Dockerfile").read_text()
    assert dockerfile.startswith("# Build an image that can serve mlflow models.")
    assert "FROM python:" in dockerfile
    model_dir = _copied_model(out)
    import mlflow

    assert f"pip install mlflow=={mlflow.__version__}" in dockerfile
    assert "ENTRYPOINT" in dockerfile and "_serve(" in dockerfile
    # the model travels inside the context, signature and requirements included
    packed = Model.load(str(model_dir / "MLmodel"))
    original = Model.load(f"{demo.local_path}/MLmodel")
    assert packed.signature == original.signature
    assert "scikit-learn" in (model_dir / "requirements.txt").read_text()
    env = yaml.safe_load((model_dir / "python_env.yaml").read_text())
    assert env["python"].count(".") >= 1
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_dockerfile_cli_and_refusals(demo, at_serve_home, tmp_path):
    from click.testing import CliRunner

    from mlkit.cli import cli

    result = CliRunner().invoke(cli, ["serve", "dockerfile", demo.local_path, str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "Dockerfile").is_file() and "docker build" in result.output
    # never overwrites: a non-empty folder is refused, untouched
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    result = CliRunner().invoke(cli, ["serve", "dockerfile", demo.local_path, str(tmp_path / "a")])
    assert result.exit_code == 1 and "already exists and is not empty" in result.output
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before
    # an unknown model: one error, nothing written
    result = CliRunner().invoke(cli, ["serve", "dockerfile", "models:/nope@x", str(tmp_path / "b")])
    assert result.exit_code == 1 and "not found in the registry" in result.output
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_dockerfile_into_an_empty_folder(demo, tmp_path, mlkit_home):
    import mlkit

    (tmp_path / "empty").mkdir()
    out = mlkit.serve.dockerfile(demo.local_path, tmp_path / "empty")
    assert (_copied_model(out) / "model.skops").is_file()
    with pytest.raises(mlkit.exceptions.ServeError, match="does not exist"):
        mlkit.serve.dockerfile(tmp_path / "missing-model", tmp_path / "x")
