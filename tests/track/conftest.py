"""Fixtures for mlkit.track: a clean tracking switch and no run left active between tests."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(autouse=True)
def _clean_tracking_state():
    from mlkit.track import _state

    _state._reset()
    yield
    _state._reset()
    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:  # a failing test must not leak its run
            mlflow.end_run("FAILED")


@pytest.fixture
def git_repo(tmp_path, monkeypatch):
    """A real git repository with one commit, made the working directory."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=repo, check=True, capture_output=True, text=True,
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('v1')\n")
    git("add", "train.py")
    git("commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    return repo, git
