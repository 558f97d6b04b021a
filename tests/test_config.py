from __future__ import annotations

import os

import pytest

from mlkit import config
from mlkit.exceptions import ConfigError


def test_home_defaults_to_dot_mlkit_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MLKIT_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config.home() == tmp_path / ".mlkit" and (tmp_path / ".mlkit").is_dir()


def test_mlkit_home_overrides(mlkit_home):
    assert config.home("servers") == mlkit_home / "servers"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("MLKIT_WORKERS", "3")
    monkeypatch.setenv("MLKIT_THREADS", "2")
    monkeypatch.setenv("MLKIT_MEMORY_LIMIT", "1GB")
    s = config.settings()
    assert (s.workers, s.threads_per_worker, s.memory_limit, s.host) == (3, 2, "1GB", "127.0.0.1")
    import mlkit

    p = mlkit.cluster.plan()
    if p.kind == "local":
        assert p.kwargs["n_workers"] == 3 and p.kwargs["threads_per_worker"] == 2


@pytest.mark.parametrize("value, text", [("x", "must be an integer"), ("0", "must be >= 1")])
def test_bad_environment_values_name_the_variable(monkeypatch, value, text):
    monkeypatch.setenv("MLKIT_WORKERS", value)
    with pytest.raises(ConfigError, match=f"MLKIT_WORKERS {text}"):
        config.settings()


def test_unwritable_home_is_a_clear_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MLKIT_HOME", str(blocker / "home"))
    with pytest.raises(ConfigError, match="set MLKIT_HOME to a writable folder"):
        config.home()


def test_a_refused_store_leaves_the_previous_store_in_place(monkeypatch):
    import mlkit
    from mlkit.exceptions import ConfigError

    monkeypatch.delenv("MLKIT_STORE", raising=False)
    with pytest.raises(ConfigError, match="'relative' is neither a URL nor an absolute folder"):
        mlkit.config.set_store("relative")
    assert "MLKIT_STORE" not in os.environ  # later store calls are not poisoned
    mlkit.config.set_store("s3://bucket/mlkit")
    with pytest.raises(ConfigError):
        mlkit.config.set_store("also/relative")
    assert mlkit.config.store() == "s3://bucket/mlkit"
    mlkit.config.set_store(None)
