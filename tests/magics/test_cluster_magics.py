"""`%mlscale` through a real InteractiveShell and a real cluster."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

import mlkit
import mlkit.magics.cluster as cluster_magics


def test_help_lists_every_subcommand(shell, capsys):
    shell.run_line_magic("mlscale", "help")
    out = capsys.readouterr().out
    for name in ("up", "connect", "status", "scale", "down"):
        assert f"%mlscale {name}" in out
    lines = out.splitlines()[1:]
    assert all(len(line.split(None, 1)) == 2 and "::" not in line for line in lines), out
    assert any("Start a local" in line for line in lines)


def test_help_for_one_subcommand_shows_its_options(shell, capsys):
    shell.run_line_magic("mlscale", "help up")
    out = capsys.readouterr().out
    assert "--workers" in out and "--gpus" in out and "--memory" in out
    assert "%mlscale up [--workers" in out


def test_arguments_are_parsed_and_passed_to_the_api(shell, monkeypatch):
    seen = {}

    def fake_up(**kwargs):
        seen.update(kwargs)
        return type("H", (), {"client": "CLIENT"})()

    monkeypatch.setattr("mlkit.cluster.up", fake_up)
    shell.run_line_magic(
        "mlscale",
        "up --workers 3 --threads 2 --memory 4GB --gpus 0,1 -o silence_logs=40 -o name='x'",
    )
    assert seen == {
        "workers": 3,
        "gpus": "0,1",
        "threads_per_worker": 2,
        "memory_limit": "4GB",
        "cluster": None,
        "replace": False,
        "scheduler": None,
        "silence_logs": 40,
        "name": "x",
    }
    assert shell.user_ns["client"] == "CLIENT"


def test_cluster_manager_options_take_lists_as_one_types_them(shell, monkeypatch):
    seen = {}
    monkeypatch.setattr("mlkit.cluster.up", lambda **kw: seen.update(kw) or
                        type("H", (), {"client": None})())
    shell.run_line_magic(
        "mlscale",
        "up --cluster distributed.SSHCluster -o hosts=[10.0.0.1,10.0.0.2] "
        "-o \"connect_options={'known_hosts': None, 'port': 2222}\" -o remote_python=/opt/py",
    )
    assert seen["cluster"] == "distributed.SSHCluster"
    assert seen["hosts"] == ["10.0.0.1", "10.0.0.2"]
    assert seen["connect_options"] == {"known_hosts": None, "port": 2222}
    assert seen["remote_python"] == "/opt/py"
    shell.run_line_magic("mlscale", "up --cluster distributed.SSHCluster -o \"hosts=['a', 'b']\"")
    assert seen["hosts"] == ["a", "b"]


@pytest.mark.parametrize(
    "line, text",
    [
        ("", "needs a subcommand"),
        ("up --cluster distributed.SSHCluster -o hosts=[10.0.0.1]", "at least two host names"),
        ("launch", "unknown subcommand 'launch'; choose one of: help, "),
        ("up --workers -1", "expected a positive integer, got -1"),
        ("up --workers two", "expected a positive integer, got 'two'"),
        ("up --bogus 1", "unrecognized arguments: --bogus 1"),
        ("up -o novalue", "KEY=VALUE"),
        ("connect not-an-address", "is not a scheduler address"),
        ("connect", "the following arguments are required: address"),
        ("connect tcp://127.0.0.1:1 --tracking yes", "invalid choice: 'yes'"),
        ("scale 0", "expected a positive integer"),
        ("up --memory lots", "memory_limit='lots' is not a size"),
        ('up --cluster "unclosed', "cannot parse"),
    ],
)
def test_user_mistakes_raise_one_line_usage_errors(shell, line, text):
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("mlscale", line)
    assert text in str(info.value)


def test_mistakes_leave_the_running_cluster_intact(shell, cluster):
    for bad in ("up --workers 5", "connect tcp://127.0.0.1:1 --timeout 1", "scale -3"):
        with pytest.raises(UsageError):
            shell.run_line_magic("mlscale", bad)
    assert mlkit.cluster.current() is cluster
    assert cluster.client.submit(abs, -4).result() == 4


def test_up_status_scale_down_with_a_real_cluster(shell, capsys):
    mlkit.cluster.down()
    handle = shell.run_line_magic("mlscale", "up --workers 1 --threads 1 --memory 1GB")
    assert shell.user_ns["client"] is handle.client
    assert handle.client.submit(len, "abc").result() == 3
    assert shell.run_line_magic("mlscale", "status") is handle
    assert shell.run_line_magic("mlscale", "scale 2").n_workers == 2
    shell.run_line_magic("mlscale", "down")
    assert "cluster stopped" in capsys.readouterr().out
    assert mlkit.cluster.current() is None and "client" not in shell.user_ns
    with pytest.raises(UsageError, match="no cluster is running"):
        shell.run_line_magic("mlscale", "status")


def test_unreachable_scheduler_is_a_usage_error(shell):
    mlkit.cluster.down()
    with pytest.raises(UsageError, match="could not reach a Dask scheduler"):
        shell.run_line_magic("mlscale", "connect tcp://127.0.0.1:1 --timeout 1")


def test_line_only_subcommand_refuses_a_cell(shell):
    with pytest.raises(UsageError, match="is a line magic"):
        shell.run_cell_magic("mlscale", "status", "x = 1")


def test_subcommand_bodies_only_parse():
    # DESIGN: a magic parses and calls one API function; no cluster logic lives here.
    import inspect

    src = inspect.getsource(cluster_magics)
    assert "LocalCluster" not in src and "Client(" not in src


def test_gpus_on_a_machine_without_gpus_is_a_usage_error(shell):
    before = mlkit.cluster.current()
    with pytest.raises(UsageError, match="no GPU is visible"):
        shell.run_line_magic("mlscale", "up --gpus all --replace")
    assert mlkit.cluster.current() is before
