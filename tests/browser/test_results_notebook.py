"""A study and two trainings in a real JupyterLab, their live progress, then the saved notebook
reopened after its kernel is gone: the final states must still be on screen."""

from __future__ import annotations

import re

from tests._wait import wait_for
from tests.browser._lab import WIDGET_ERROR, Cell, Notebook

NOTEBOOK = "results.ipynb"
# Ceiling for a small training on a loaded 2-core machine (only bounds a hang).
TRAINING = 240

# Each trial takes a couple of seconds, so the live view can be read while trials run.
TUNE = """%%mlscale tune --trials 4 --direction maximize --study browser --no-track
def objective(trial):
    import time
    x = trial.suggest_float("x", -3.0, 3.0)
    time.sleep(2.5)
    return -(x - 1.0) ** 2"""

DATA = """import numpy as np, pandas as pd
rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 6))
df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
df["y"] = (X[:, 0] + X[:, 1] > 0).astype(int)
noise = df.copy()
noise["y"] = rng.integers(0, 2, len(df))  # pure noise: validation loss stops improving at once
train, valid = noise.iloc[:1500], noise.iloc[1500:]"""

TRAIN = """import mlkit
result = mlkit.train.xgboost(df, "y", params={"objective": "binary:logistic", "max_depth": 3},
                             rounds=10, name="browser-train", track=False)"""

EARLY = """early = mlkit.train.xgboost(train, "y", valid=valid,
                            params={"objective": "binary:logistic", "eta": 0.3},
                            rounds=200, early_stopping=5, name="browser-early", track=False)"""


def elapsed_shown(cell: Cell) -> str | None:
    m = re.search(r"(\d+\.\d) s", cell.output_text())
    return m.group(1) if m else None


def trials_done(cell: Cell) -> int | None:
    m = re.search(r"(\d+) / 4 trials", cell.output_text())
    return int(m.group(1)) if m else None


# Final states are read from the cell's output, whether a live widget still draws them or a
# static snapshot replaced it when the work ended.


def test_tune_widget_shows_running_trials_and_a_ticking_clock(nb: Notebook):
    nb.open()
    nb.run("%load_ext mlkit")
    nb.up_index = nb.run("%mlscale up --workers 2 --threads 1").index  # type: ignore[attr-defined]
    cell = nb.run(TUNE, wait=False)
    nb.tune_index = cell.index  # type: ignore[attr-defined]
    widget = cell.widget("mlkit tune")
    widget.first.wait_for(state="visible", timeout=120_000)
    first = elapsed_shown(cell)
    seen = {"running": False, "ticked": False}

    def ticked_or_trial_done() -> bool:
        text = cell.output_text()
        if trials_done(cell) == 0:
            seen["running"] |= bool(re.search(r"running", text, re.I))
            seen["ticked"] |= elapsed_shown(cell) not in (None, first)
        return (seen["running"] and seen["ticked"]) or (trials_done(cell) or 0) > 0

    wait_for(ticked_or_trial_done, timeout=120, what="the tune widget to tick or a trial to end")
    assert seen["running"], "no running trial shown before the first trial finished"
    assert seen["ticked"], f"clock frozen at {first} s until the first trial finished"
    cell.wait_done()


def test_tune_widget_final_state(nb: Notebook):
    cell = Cell(nb, nb.tune_index)  # type: ignore[attr-defined]
    wait_for(lambda: trials_done(cell) == 4, timeout=60, what="4 / 4 trials")
    assert "best" in cell.output_text()
    rows = cell.locator.locator(".jp-OutputArea table tr")
    assert rows.count() == 5, f"top-trials table has {rows.count()} rows (header + 4 trials)"
    assert cell.locator.locator(".jp-OutputArea svg circle").count() == 4
    assert nb.value("len(study.trials), study.best_trial.number") in {f"4 {n}" for n in range(4)}


def test_training_progress_reaches_the_last_round(nb: Notebook):
    nb.run(DATA)
    cell = nb.run(TRAIN, wait=False)
    nb.train_index = cell.index  # type: ignore[attr-defined]
    cell.wait_done(timeout=TRAINING)
    wait_for(lambda: "10/10" in cell.output_text(), timeout=60, what="10/10 rounds")
    assert cell.locator.locator(".progress-bar-danger").count() == 0, "a finished run shown red"
    assert nb.value("result.booster.num_boosted_rounds()") == "10"


def test_training_keeps_worker_noise_out_of_the_notebook(nb: Notebook):
    cell = Cell(nb, nb.train_index)  # type: ignore[attr-defined]
    assert "10/10" in cell.output_text(), "the training did not run: nothing to judge"
    err = cell.stderr()
    assert "got rank" not in err, f"xgboost's collective lines in the notebook: {err[:300]!r}"
    assert not re.search(r"distributed\.(worker|nanny|core)", err), err[:300]


def test_early_stopping_is_shown_as_success(nb: Notebook):
    cell = nb.run(EARLY, timeout=TRAINING)
    best, rounds = nb.value("early.best_iteration, early.booster.num_boosted_rounds()").split()
    assert int(rounds) < 200, "the data was meant to stop early"
    shown = cell.output_text()
    assert cell.locator.locator(".progress-bar-danger").count() == 0, f"shown red: {shown!r}"
    assert re.search(r"stopped early|early[- ]stop", shown, re.I), f"no 'stopped early': {shown!r}"


def test_saved_notebook_shows_final_states_without_a_kernel(nb: Notebook):
    # The cluster's output turns static when the cluster stops; a notebook saved while its
    # cluster still runs keeps a live widget view, which JupyterLab cannot draw without the
    # kernel (a known gap, issue 14). Stop it first, as a finished notebook would.
    nb.run("%mlscale down", timeout=120)
    saved = nb.save()
    assert any(c.get("outputs") for c in saved["cells"])
    nb.shutdown_kernel()
    nb.page.goto("about:blank")
    nb.open()  # reopened: a new kernel holds none of the old widgets
    cluster = Cell(nb, nb.up_index)  # type: ignore[attr-defined]
    tune = Cell(nb, nb.tune_index)  # type: ignore[attr-defined]
    train = Cell(nb, nb.train_index)  # type: ignore[attr-defined]
    # Either the final state or the error appears once the page has tried the widget outputs.
    wait_for(
        lambda: "mlkit cluster" in cluster.output_text() or WIDGET_ERROR in nb.text(),
        timeout=30,
        what="the cluster output settled",
    )
    assert WIDGET_ERROR not in nb.text(), "a widget output reads 'Error displaying widget'"
    assert "mlkit cluster" in cluster.output_text(), cluster.output_text()[:300]
    assert "stopped" in cluster.output_text(), cluster.output_text()[:300]
    wait_for(lambda: "4 / 4 trials" in tune.output_text(), timeout=30, what="the study's state")
    assert tune.locator.locator("table tr").count() >= 5, "no top-trials table"
    assert tune.locator.locator("svg").count() >= 1, "no study plot"
    wait_for(
        lambda: re.search(r"10/10|round", train.output_text(), re.I),
        timeout=30,
        what="the training's result",
    )
    assert WIDGET_ERROR not in nb.text(), "a widget output reads 'Error displaying widget'"
