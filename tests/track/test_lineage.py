"""Lineage tags: git, notebook path, versions, cluster, and what they cost to compute."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import mlkit
from mlkit.track import git_tags, lineage_tags, notebook_path


def test_git_commit_branch_and_dirty_flag(git_repo):
    repo, git = git_repo
    tags = lineage_tags()
    assert tags["mlkit.git.commit"] == git("rev-parse", "HEAD")
    assert tags["mlflow.source.git.commit"] == tags["mlkit.git.commit"]
    assert tags["mlkit.git.branch"] == "main"
    assert tags["mlkit.git.root"] == str(repo.resolve())
    assert tags["mlkit.git.dirty"] == "false"

    (repo / "scratch.txt").write_text("untracked files do not make a tree dirty")
    assert git_tags()["mlkit.git.dirty"] == "false"

    (repo / "train.py").write_text("print('v2')\n")
    assert git_tags()["mlkit.git.dirty"] == "true"

    git("commit", "-qam", "second")
    after = git_tags()
    assert after["mlkit.git.dirty"] == "false"
    assert after["mlkit.git.commit"] == git("rev-parse", "HEAD") != tags["mlkit.git.commit"]


def test_detached_head_has_no_branch(git_repo):
    repo, git = git_repo
    git("checkout", "-q", "--detach")
    tags = git_tags()
    assert tags["mlkit.git.commit"] == git("rev-parse", "HEAD")
    assert "mlkit.git.branch" not in tags


def test_outside_a_repository_there_are_no_git_tags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tags = lineage_tags()
    assert not any(k.startswith(("mlkit.git.", "mlflow.source.git")) for k in tags)
    assert tags["mlkit.python"] == ".".join(map(str, sys.version_info[:3]))


def test_an_empty_repository_has_no_commit_to_record(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    assert git_tags() == {}


def test_notebook_path_sources_in_order(shell, monkeypatch):
    monkeypatch.delenv("MLKIT_NOTEBOOK", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    shell.user_ns.pop("__vsc_ipynb_file__", None)
    shell.user_ns.pop("__session__", None)
    assert notebook_path() is None

    monkeypatch.setenv("JPY_SESSION_NAME", "work/from-jupyter-server.ipynb")
    assert notebook_path() == "work/from-jupyter-server.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", "Console 1")  # a console, not a notebook
    assert notebook_path() is None

    monkeypatch.setitem(shell.user_ns, "__session__", "/srv/ipykernel.ipynb")
    assert notebook_path() == "/srv/ipykernel.ipynb"
    monkeypatch.setitem(shell.user_ns, "__vsc_ipynb_file__", "/home/u/vscode.ipynb")
    assert notebook_path() == "/home/u/vscode.ipynb"
    monkeypatch.setenv("MLKIT_NOTEBOOK", "/jobs/papermill-input.ipynb")
    assert notebook_path() == "/jobs/papermill-input.ipynb"

    tags = lineage_tags()
    assert tags["mlkit.notebook"] == "/jobs/papermill-input.ipynb"
    assert tags["mlflow.source.name"] == "/jobs/papermill-input.ipynb"
    assert tags["mlflow.source.type"] == "NOTEBOOK"


def test_package_versions_come_from_installed_metadata():
    tags = lineage_tags()
    for dist in ("mlflow", "dask", "pandas", "xgboost", "torch", "optuna", "scikit-learn"):
        assert tags[f"mlkit.pkg.{dist}"] == metadata.version(dist)
    assert tags["mlkit.pkg.mlkit"] == mlkit.__version__


def test_lineage_imports_no_engine_and_starts_no_cluster():
    code = (
        "import json, sys, mlkit\n"
        "tags = mlkit.track.lineage_tags()\n"
        "heavy = ['dask', 'distributed', 'torch', 'xgboost', 'optuna', 'mlflow', 'pandas']\n"
        "print(json.dumps([[m for m in heavy if m in sys.modules], tags]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, tags = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == []
    assert not any(k.startswith("mlkit.cluster") for k in tags)


def test_cluster_description_of_the_active_cluster(cluster):
    tags = lineage_tags()
    assert tags["mlkit.cluster.kind"] == "local"
    assert tags["mlkit.cluster.workers"] == "2"
    assert tags["mlkit.cluster.threads"] == "2"
    assert tags["mlkit.cluster.gpus"] == "0"
    assert int(tags["mlkit.cluster.memory"]) == 2 * 2_000_000_000
