"""The tuning widget (headless), its text fallback, and ``%%mlscale tune``."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from IPython.core.error import UsageError

import mlkit
from mlkit.tune._progress import TrialRow, TuneProgress
from mlkit.widgets.tune import TuneWidget, plot_svg, render_html


def _progress():
    p = TuneProgress("demo", total=5, directions=["maximize"])
    p.record(TrialRow(0, "COMPLETE", (0.5,), {"depth": 3, "lr": 0.1}, "tcp://a", 1.25))
    p.record(TrialRow(1, "PRUNED", None, {"depth": 9, "lr": 0.3}, "tcp://b", 0.5))
    p.record(TrialRow(2, "COMPLETE", (0.8,), {"depth": 5, "lr": 0.05}, "tcp://b", 1.0))
    p.record(TrialRow(3, "FAIL", None, {"depth": 2}, "tcp://a", 0.1, "ValueError: x"))
    p.running = 1
    return p


def test_widget_draws_progress_best_plot_and_top_trials():
    p = _progress()
    w = TuneWidget(p)
    assert (w.bar.value, w.bar.max) == (4, 5)
    assert w.count.value == "4 / 5 trials"
    assert "best <b>0.8</b> (trial 2)" in w.summary.value
    assert "2 complete" in w.summary.value and "1 pruned" in w.summary.value
    assert "1 fail" in w.summary.value and "1 running" in w.summary.value
    assert w.plot.value.count("<circle") == 2  # one dot per COMPLETE trial
    assert "<path" in w.plot.value  # the best-so-far line
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", w.table.value)
    assert rows == [("2", "0.8"), ("0", "0.5")]  # best first (maximize)
    assert "depth=5, lr=0.05" in w.table.value

    p.record(TrialRow(4, "COMPLETE", (0.9,), {"depth": 6, "lr": 0.07}, "tcp://a", 1.0))
    p.running = 0
    p.finished = True
    w.update()
    assert w.bar.value == 5 and w.bar.bar_style == "success"
    assert "best <b>0.9</b> (trial 4)" in w.summary.value
    assert w.plot.value.count("<circle") == 3


def test_static_html_and_text_views():
    p = _progress()
    page = render_html(p)
    assert "study demo" in page and "4 / 5 trials" in page and "<svg" in page
    text = str(p)
    assert text.splitlines()[0] == (
        "demo: 4/5 trials | 2 complete, 1 pruned, 1 fail | 1 running | best 0.8 (trial 2)"
    )
    assert "#2" in text and "depth=5" in text
    empty = TuneProgress("e", 3, ["minimize"])
    assert "no finished trial yet" in plot_svg(empty)


def test_finished_study_displays_as_widget(cluster):
    def objective(trial):
        return trial.suggest_float("x", 0, 1)

    study = mlkit.tune.tune(objective, 3, study_name="shown", progress=False, track=False)
    w = study.widget()
    assert w.bar.value == 3 and w.plot.value.count("<circle") == 3
    again = mlkit.tune.open_study("shown")  # no progress object: rebuilt from the trials
    assert again.widget().bar.value == 3
    assert "3 complete" in again._repr_html_()


def test_tune_magic_runs_the_cell_objective(cluster, shell):
    cell = (
        "import math\n"
        "def helper(x):\n"
        "    return -math.fabs(x - 3)\n"
        "def objective(trial):\n"
        "    return helper(trial.suggest_float('x', 0, 10))\n"
    )
    shell.run_cell_magic(
        "mlscale", "tune --trials 4 --direction maximize --study magic1 --no-track", cell
    )
    study = shell.user_ns["study"]
    assert study.study_name == "magic1"
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert study.direction.name == "MAXIMIZE"
    assert study.best_value == max(t.value for t in study.trials) <= 0


def test_tune_magic_errors_are_usage_errors(cluster, shell):
    with pytest.raises(UsageError, match="must define `def objective"):
        shell.run_cell_magic("mlscale", "tune --trials 2", "x = 1\n")
    with pytest.raises(UsageError, match="direction must be 'minimize' or 'maximize'"):
        shell.run_cell_magic(
            "mlscale", "tune --trials 2 --direction up", "def objective(t):\n    return 1\n"
        )
    with pytest.raises(UsageError, match="positive integer"):
        shell.run_cell_magic("mlscale", "tune --trials 0", "def objective(t):\n    return 1\n")
    with pytest.raises(UsageError, match="cell magic"):
        shell.run_line_magic("mlscale", "tune --trials 2")


def test_importing_mlkit_tune_loads_no_engine():
    code = (
        "import sys, mlkit.tune, mlkit.magics.tune\n"
        "heavy = ['optuna', 'dask', 'distributed', 'mlflow', 'xgboost', 'ipywidgets', 'pandas']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
