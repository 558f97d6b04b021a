"""A notebook executed by papermill in a real kernel keeps every final state in its outputs.

papermill (nbclient + jupyter_client, a real ipykernel) runs ``%mlscale up``, ``%mlscale scale``,
a short xgboost training with early stopping, a ``%%mlscale tune`` study and a drift check; the
saved .ipynb is then read back as a kernel-less frontend would: every output must hold
``text/html`` (and ``text/plain``) with the final values, and nbconvert's HTML export must show
them too.
"""

from __future__ import annotations

import json
import os
import re

import nbformat
import pytest

WIDGET = "application/vnd.jupyter.widget-view+json"

CELLS = [
    "%load_ext mlkit",
    "%mlscale up --workers 2 --threads 1 --memory 1GB",
    "%mlscale scale 1",
    # breast cancer stops early well before 300 rounds at eta 0.3
    """import dask.dataframe as dd
from sklearn.datasets import load_breast_cancer
import mlkit

data = load_breast_cancer(as_frame=True).frame
data.columns = [c.replace(" ", "_") for c in data.columns]
train = data.sample(frac=0.7, random_state=0)
valid = data.drop(train.index)
result = mlkit.train.xgboost(
    dd.from_pandas(train, npartitions=1), "target", valid=dd.from_pandas(valid, npartitions=1),
    params={"objective": "binary:logistic", "eval_metric": "logloss", "eta": 0.3},
    rounds=300, early_stopping=5, track=False)""",
    "print('ROUNDS', result.booster.num_boosted_rounds(), 'BEST', result.best_iteration + 1)",
    """%%mlscale tune --trials 6 --direction minimize --study saved --no-track
def objective(trial):
    x = trial.suggest_float("x", -3, 3)
    return (x - 1) ** 2""",
    """import optuna
print('BEST_VALUE', optuna.load_study(study_name='saved', storage=study._storage).best_value)
print('TOP', [t.number for t in sorted(study.trials, key=lambda t: t.value)[:5]])""",
    """import numpy as np
import pandas as pd
rng = np.random.default_rng(0)
ref = pd.DataFrame({"f0": rng.normal(0, 1, 3000), "f1": rng.normal(0, 1, 3000)})
cur = pd.DataFrame({"f0": rng.normal(2, 1, 3000), "f1": rng.normal(0, 1, 3000)})
report = mlkit.monitor.drift(ref, cur)
print('VERDICT', report.verdict)
report""",
    # no %mlscale down: the cluster is still running when papermill saves the notebook
]


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")


def _html_outputs(cell) -> list[dict]:
    return [o for o in cell.outputs if "data" in o]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    import papermill

    folder = tmp_path_factory.mktemp("saved")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    source, output = folder / "in.ipynb", folder / "out.ipynb"
    nbformat.write(nb, source)
    env_before = dict(os.environ)
    os.environ["MLKIT_HOME"] = str(folder / "home")
    os.environ["MLKIT_DASHBOARD"] = "1"  # the saved cluster summary links the dashboard
    try:
        papermill.execute_notebook(
            str(source), str(output), kernel_name="python3", cwd=str(folder),
            progress_bar=False, request_save_on_cell_execute=False,
            # a kernel started from this venv, as JupyterLab would start it
            start_timeout=120, execution_timeout=600,
        )
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    return nbformat.read(output, as_version=4), output


def test_cluster_output_keeps_its_latest_summary(executed):
    nb, _ = executed
    up = nb.cells[1]
    bundles = _html_outputs(up)
    assert len(bundles) == 1, up.outputs  # one live widget
    data = bundles[0]["data"]
    # the live widget, with its static twin kept in step with %mlscale scale 1
    assert WIDGET in data
    html, text = data["text/html"], data["text/plain"]
    assert "workers: 1 " in html and "workers: 1 " in text
    assert re.search(r'dashboard: <a href="http://127\.0\.0\.1:\d+/status"', html)
    scale = nb.cells[2]
    assert _stdout(scale).strip() == "scaled to 1 workers"
    assert not _html_outputs(scale)  # no second, different table


def test_training_output_is_a_static_success_with_its_history(executed):
    nb, _ = executed
    train, printed = nb.cells[3], nb.cells[4]
    rounds, best = map(int, re.search(r"ROUNDS (\d+) BEST (\d+)", _stdout(printed)).groups())
    assert rounds < 300
    bundles = _html_outputs(train)
    assert len(bundles) == 1, train.outputs
    data = bundles[0]["data"]
    assert WIDGET not in data
    html = data["text/html"]
    assert f"stopped early at round {rounds}, best {best}" in html
    assert 'data-status="early"' in html and "#4caf50" in html  # success green, not red
    assert "<svg" in html and f"best round {best}" in html  # history chart, best round marked
    assert f"stopped early at round {rounds}, best {best}" in data["text/plain"]


def test_tune_output_keeps_plot_and_top_trials(executed):
    nb, _ = executed
    tune, printed = nb.cells[5], nb.cells[6]
    best = float(re.search(r"BEST_VALUE (\S+)", _stdout(printed)).group(1))
    top = json.loads(re.search(r"TOP (\[.*\])", _stdout(printed)).group(1))
    bundles = _html_outputs(tune)
    assert len(bundles) == 1, tune.outputs
    data = bundles[0]["data"]
    assert WIDGET not in data
    html = data["text/html"]
    assert "6 / 6 trials" in html and f"best <b>{best:.6g}</b>" in html
    assert html.count("<circle") == 6  # the plot: one dot per trial
    rows = [int(n) for n in re.findall(r"<tr><td>(\d+)</td>", html)]
    assert rows == top  # the top-trials table, best first
    assert f"best {best:.6g}" in data["text/plain"]


def test_drift_report_is_saved(executed):
    nb, _ = executed
    cell = nb.cells[7]
    verdict = re.search(r"VERDICT (.+)", _stdout(cell)).group(1).strip()
    assert "drift" in verdict.lower()
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1
    assert verdict in results[0]["data"]["text/html"]
    assert verdict in results[0]["data"]["text/plain"]
    # the scan's progress (if any) ended as a static line, not a dead widget
    assert all(WIDGET not in o["data"] for o in _html_outputs(cell))


def test_no_output_is_left_as_a_widget_only(executed):
    nb, _ = executed
    for i, cell in enumerate(nb.cells):
        for out in _html_outputs(cell):
            if WIDGET in out["data"]:
                assert "text/html" in out["data"], (i, out)


def test_nbconvert_html_export_shows_the_final_states(executed):
    from nbconvert import HTMLExporter

    nb, output = executed
    page, _ = HTMLExporter().from_notebook_node(nb)
    rounds = re.search(r"ROUNDS (\d+) BEST (\d+)", _stdout(nb.cells[4]))
    assert f"stopped early at round {rounds.group(1)}, best {rounds.group(2)}" in page
    assert "6 / 6 trials" in page and "<circle" in page
    assert re.search(r"VERDICT (.+)", _stdout(nb.cells[7])).group(1).strip() in page
    # The cluster is still running, so its output is the live widget; papermill stored the
    # widget state, and nbconvert then embeds the widget (the ipywidgets embed convention)
    # instead of the static fallback. Either way the page carries the summary.
    cluster = nb.cells[1].outputs[0]["data"]
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
    if state and cluster[WIDGET]["model_id"] in state["state"]:
        assert "workers: <b>1<\\/b>" in page
    else:
        assert "mlkit cluster</b> (local)" in page and "workers: 1 " in page

