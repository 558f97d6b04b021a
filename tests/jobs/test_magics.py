"""``%mlscale run`` and ``%mlscale jobs`` on a real InteractiveShell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

import mlkit


def test_run_magic_executes_and_returns_the_result(shell, notebooks):
    result = shell.run_line_magic("mlscale", f"run {notebooks / 'simple1.ipynb'} -p x 4 -p label m")
    assert result.ok and result.recorded["result"] == 16.0 and result.recorded["label"] == "m"
    table = shell.run_line_magic("mlscale", "jobs --last 5")
    assert list(table["run_id"]) == [result.run_id] and list(table["status"]) == ["ok"]


def test_failing_notebook_is_one_usage_error_line(shell, notebooks):
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("mlscale", f"run {notebooks / 'raise1.ipynb'}")
    msg = str(info.value)
    assert msg.startswith("%mlscale run: raise1.ipynb: FAILED at cell 2 (In [3])")
    assert "ZeroDivisionError: division by zero" in msg and "\n" not in msg


def test_bad_parameter_name_is_a_usage_error(shell, notebooks):
    with pytest.raises(UsageError, match="Python keyword"):
        shell.run_line_magic("mlscale", f"run {notebooks / 'simple1.ipynb'} -p class 1")
    with pytest.raises(UsageError, match="positive number of seconds"):
        shell.run_line_magic("mlscale", f"run {notebooks / 'simple1.ipynb'} --timeout 0")


def test_grid_options_are_parsed_into_one_sweep_call(shell, monkeypatch, notebooks):
    seen = {}

    def fake_sweep(notebook, grid, parameters, **options):
        seen.update(notebook=notebook, grid=grid, parameters=parameters, options=options)
        return "table"

    monkeypatch.setattr(mlkit.jobs, "sweep", fake_sweep)
    out = shell.run_line_magic(
        "mlscale",
        "run 'nb.ipynb' --grid lr=0.1,0.01 --grid depth=4,6 -p seed 7 -p note \"a b\" "
        "-y 'tags: [a, b]' "
        "--cell-timeout 30 --experiment exp --output out",
    )
    assert out == "table"
    assert seen["grid"] == {"lr": [0.1, 0.01], "depth": [4, 6]}
    assert seen["notebook"] == "nb.ipynb"
    assert seen["parameters"] == {"tags": ["a", "b"], "seed": 7, "note": "a b"}
    assert seen["options"] == {
        "output": "out", "kernel": None, "timeout": None, "cell_timeout": 30.0,
        "experiment": "exp", "name": None,
    }


def test_help_lists_run_and_jobs(shell, capsys):
    shell.run_line_magic("mlscale", "help")
    text = capsys.readouterr().out
    assert "%mlscale run" in text and "%mlscale jobs" in text
