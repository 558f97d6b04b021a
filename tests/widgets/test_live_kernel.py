"""The widgets as a frontend sees them: a real kernel (jupyter_client's KernelManager, what
JupyterLab uses), read through its IOPub messages (widget comm updates, display updates).
"""

from __future__ import annotations

import os
import re
import sys
from collections import defaultdict
from typing import Any

import pytest

WIDGET = "application/vnd.jupyter.widget-view+json"


class Kernel:
    """Run cells in a real ipykernel; keep every IOPub message each cell produced."""

    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.models: dict[str, str] = {}  # comm id -> widget model name

    def run(self, code: str, timeout: float = 300) -> list[dict[str, Any]]:
        msg_id = self.kc.execute(code)
        msgs = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            msgs.append(msg)
            kind = msg["msg_type"]
            if kind == "comm_open":
                state = msg["content"]["data"].get("state", {})
                self.models[msg["content"]["comm_id"]] = state.get("_model_name", "")
            if kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                return msgs

    def watch(self, seen: Any, timeout: float = 300) -> list[dict[str, Any]]:
        """IOPub messages from any cell or thread (a widget refreshing in the background sends
        its own) until ``seen(msg)`` is true for one; that one is the last returned."""
        import queue
        import time

        deadline = time.monotonic() + timeout
        msgs = []
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                raise AssertionError(f"no such IOPub message within {timeout:g} s; got "
                                     f"{[m['msg_type'] for m in msgs][-20:]}") from None
            msgs.append(msg)
            if seen(msg):
                return msgs

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def comm_updates(msgs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(comm id, state change) of every widget update, in order."""
    out = []
    for m in msgs:
        if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update":
            out.append((m["content"]["comm_id"], m["content"]["data"].get("state", {})))
    return out


def display_updates(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["content"]["data"] for m in msgs if m["msg_type"] == "update_display_data"]


def stdout(msgs: list[dict[str, Any]]) -> str:
    return "".join(
        m["content"]["text"]
        for m in msgs
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    )


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    home = tmp_path_factory.mktemp("kernel-home")
    env = {**os.environ, "MLKIT_HOME": str(home), "MLKIT_DASHBOARD": "0"}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    k = Kernel(env)
    k.run("%load_ext mlkit")
    k.up = k.run("%mlscale up --workers 2 --threads 1 --memory 1GB")
    yield k
    k.run("%mlscale down")
    k.close()


def test_cluster_output_is_one_widget_with_static_twin(kernel):
    shown = [m["content"] for m in kernel.up if m["msg_type"] == "display_data"]
    assert len(shown) == 1
    data = shown[0]["data"]
    assert WIDGET in data and "workers: 2" in data["text/html"]
    assert shown[0]["transient"]["display_id"].startswith("mlkit-")


def test_tune_shows_running_trials_and_a_ticking_clock_before_any_finishes(kernel):
    msgs = kernel.run(
        "%%mlscale tune --trials 2 --direction minimize --study live --no-track\n"
        "import time\n"
        "def objective(trial):\n"
        "    time.sleep(3)\n"
        "    return trial.suggest_float('x', 0, 1)\n"
    )
    summaries = [
        s["value"]
        for cid, s in comm_updates(msgs)
        if kernel.models.get(cid) == "HTMLModel" and isinstance(s.get("value"), str)
    ]
    early = [
        float(m.group(2))
        for v in summaries
        if (m := re.search(r"no trial finished yet &middot; (\d) running .*?([\d.]+) s", v))
        and m.group(1) == "2"
    ]
    # ticks with both trials running and none finished, the clock past one second
    assert early and max(early) >= 1.0, summaries[:5]
    assert len(set(early)) >= 3  # it ticked, not one frozen value
    final = display_updates(msgs)[-1]
    assert WIDGET not in final  # replaced by the static final view
    assert "2 / 2 trials" in final["text/html"] and final["text/html"].count("<circle") == 2


def test_early_stopping_ends_green_and_static(kernel):
    msgs = kernel.run(
        "import dask.dataframe as dd\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "import mlkit\n"
        "d = load_breast_cancer(as_frame=True).frame\n"
        "d.columns = [c.replace(' ', '_') for c in d.columns]\n"
        "tr = d.sample(frac=0.7, random_state=0); va = d.drop(tr.index)\n"
        "r = mlkit.train.xgboost(dd.from_pandas(tr, npartitions=1), 'target',\n"
        "    valid=dd.from_pandas(va, npartitions=1), rounds=300, early_stopping=5,\n"
        "    params={'objective': 'binary:logistic', 'eval_metric': 'logloss', 'eta': 0.3},\n"
        "    track=False)\n"
        "print('ROUNDS', r.booster.num_boosted_rounds(), r.best_iteration + 1)\n"
    )
    rounds, best = map(int, re.search(r"ROUNDS (\d+) (\d+)", stdout(msgs)).groups())
    assert rounds < 300
    styles = [
        s["bar_style"]
        for cid, s in comm_updates(msgs)
        if "bar_style" in s and kernel.models.get(cid) in ("FloatProgressModel", "IntProgressModel")
    ]
    assert styles and styles[-1] == "success" and "danger" not in styles
    final = display_updates(msgs)[-1]
    assert WIDGET not in final
    assert f"stopped early at round {rounds}, best {best}" in final["text/html"]


def test_scale_magic_updates_the_live_widget(kernel):
    msgs = kernel.run("%mlscale scale 3", timeout=180)
    assert stdout(msgs).strip() == "scaled to 3 workers"
    assert not [m for m in msgs if m["msg_type"] in ("display_data", "execute_result")]
    box = [
        s["value"]
        for cid, s in comm_updates(msgs)
        if "value" in s and kernel.models.get(cid) == "BoundedIntTextModel"
    ]
    assert box[-1] == 3
    update = display_updates(msgs)[-1]
    assert "workers: 3" in update["text/html"] and WIDGET in update  # still the live widget
    kernel.run("%mlscale scale 2", timeout=180)


def test_stopping_leaves_a_clean_static_cluster_output(kernel):
    msgs = kernel.run("mlkit.cluster.current().widget().stop_button.click()")
    changes = defaultdict(dict)
    for cid, s in comm_updates(msgs):
        changes[kernel.models.get(cid)].update(s)
    assert changes["BoundedIntTextModel"].get("disabled") is True
    assert changes["ButtonModel"].get("disabled") is True
    final = display_updates(msgs)[-1]
    assert WIDGET not in final and "stopped" in final["text/html"]
    assert "?" not in final["text/plain"]
    kernel.run("%mlscale up --workers 2 --threads 1 --memory 1GB")  # for the fixture's down


def test_job_and_sweep_progress_end_as_static_lines(kernel, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("y = x * 2"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    msgs = kernel.run(
        f"job = mlkit.jobs.run({str(path)!r}, {{'x': 3}})\n"
        "print('STATUS', job.status)\n"
    )
    assert "STATUS ok" in stdout(msgs)
    final = display_updates(msgs)[-1]
    assert WIDGET not in final
    assert "job tiny: finished (3/3 cells)" in final["text/plain"]
    msgs = kernel.run(f"table = mlkit.jobs.sweep({str(path)!r}, {{'x': [1, 2]}})", timeout=300)
    final = display_updates(msgs)[-1]
    assert WIDGET not in final
    assert "sweep tiny: finished (2/2 jobs)" in final["text/plain"]
    assert "ok=2, not_ok=0" in final["text/plain"]


def test_serve_widget_follows_the_gateway_and_ends_static(kernel, tmp_path):
    """``%mlscale serve MODEL --replicas 1`` shows the live serve widget; requests sent from
    outside the kernel reach it through its background refresh (comm updates on IOPub), and
    stopping the gateway turns the same output into its static final state."""
    import json

    import mlflow
    import numpy as np
    import pandas as pd
    import requests
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(X, (X.a > 0).astype("int64"))
    path = tmp_path / "kernel-model"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X, model.predict(X)),
                              pip_requirements=["scikit-learn"],
                              skops_trusted_types=["numpy.dtype"])
    msgs = kernel.run(f"srv = %mlscale serve {path} --replicas 1 --name kernel-gw --timeout 600\n"
                      "print('URL', srv.url)", timeout=900)
    shown = [m["content"] for m in msgs if m["msg_type"] == "display_data"]
    assert len(shown) == 1 and WIDGET in shown[0]["data"], shown
    assert "mlkit gateway" in shown[0]["data"]["text/html"]
    display_id = shown[0]["transient"]["display_id"]
    # ipywidgets opens each comm with the widget's defaults, then sends the values it draws
    stats = {cid for cid, state in comm_updates(msgs)
             if "requests: <b>0</b>" in str(state.get("value"))}
    assert len(stats) == 1, f"no stats widget showing 0 requests: {comm_updates(msgs)[:6]}"
    stats_id = stats.pop()
    url = stdout(msgs).split("URL ", 1)[1].split()[0]

    s = requests.Session()
    s.trust_env = False
    body = json.dumps({"dataframe_split": X.head(2).to_dict(orient="split")})
    for _ in range(6):
        r = s.post(f"{url}/invocations", data=body,
                   headers={"Content-Type": "application/json"}, timeout=120)
        assert r.status_code == 200, r.text
    kernel.watch(lambda m: m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == stats_id
                 and "requests: <b>6</b>" in str(m["content"]["data"].get("state", {})))

    msgs = kernel.run("%mlscale serve stop kernel-gw")
    final = [m for m in msgs if m["msg_type"] == "update_display_data"
             and m["content"]["transient"]["display_id"] == display_id]
    if not final:  # the widget's own refresh thread turns it static, at its next tick
        final = kernel.watch(lambda m: m["msg_type"] == "update_display_data"
                             and m["content"]["transient"]["display_id"] == display_id)[-1:]
    data = final[-1]["content"]["data"]
    assert WIDGET not in data
    assert "stopped" in data["text/plain"] and "requests 6" in data["text/plain"], data
