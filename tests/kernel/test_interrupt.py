"""The notebook's Interrupt button, for real: a jupyter_client kernel with a 2-worker mlkit
cluster, interrupted (SIGINT to the kernel's whole process group, as JupyterLab does) during
plain and mlkit work. Every time: the cell ends with KeyboardInterrupt, control comes back, the
same workers are still there and take new work, nothing is left on the scheduler, and an MLflow
run of the call ends KILLED.

The seconds from the interrupt to the cell's reply are printed (``pytest -s``) for the record;
only a generous ceiling is asserted (this is a shared 2-core machine).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from tests._wait import wait_for
from tests.kernel.conftest import _children, kernel_json

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "jobs" / "notebooks"
# Only a hang fails: the goal (and what the printed figures show) is well under 3 s.
CONTROL_BACK_CEILING = 30.0
RESULTS: dict[str, dict] = {}


@pytest.fixture(scope="module")
def side(kernel):
    """A second Dask client in the test process, to look at the kernel's scheduler."""
    from distributed import Client

    address = kernel_json(kernel, "client.scheduler.address")
    c = Client(address, timeout="30s")
    yield c
    c.close()


def _processing(dask_scheduler) -> int:
    return sum(len(ws.processing) for ws in dask_scheduler.workers.values())


def _scheduler_tasks(dask_scheduler) -> dict:
    return {str(k): ts.state for k, ts in dask_scheduler.tasks.items()}


def _train_events(side) -> int:
    """Progress messages the newest training's ranks have streamed (mlkit's channel topic;
    topics of earlier cases stay on the scheduler, so only new ones count)."""
    counts = [
        len(v)
        for k, v in side.get_events().items()
        if str(k).startswith("mlkit-train") and k not in side._old_topics
    ]
    return max(counts or [0])


def _executing(dask_worker) -> int:
    return len(dask_worker.state.executing)


def _runs(kernel_home, since: float) -> list:
    import mlflow

    store = kernel_home / "mlkit" / "mlflow" / "mlflow.db"
    if not store.exists():
        return []
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    exps = [e.experiment_id for e in client.search_experiments()]
    return [r for r in client.search_runs(exps) if r.info.start_time >= since * 1000 - 1000]


# name -> (setup cell, interrupted cell, ready(printed, side client), expects an MLflow run)
CASES = {
    "sleep": (
        "import time",
        "print('go', flush=True); time.sleep(60)",
        lambda out, sc: "go" in out,
        False,
    ),
    "dask-compute": (
        "import time, dask.bag as db\n"
        "bag = db.from_sequence(range(200), npartitions=200)\n"
        "bag = bag.map(lambda x: (time.sleep(0.3), x)[1])",
        "bag.sum().compute()",
        lambda out, sc: sc.run_on_scheduler(_processing) > 0,
        False,
    ),
    "client-submit": (
        "def slow():\n"
        "    import time\n"
        "    for _ in range(200):\n"
        "        time.sleep(0.1)\n"
        "    return 1",
        "client.submit(slow, pure=False).result()",
        lambda out, sc: sc.run_on_scheduler(_processing) > 0,
        False,
    ),
    "xgboost": (
        "import mlkit, numpy as np, pandas as pd\n"
        "rng = np.random.default_rng(0)\n"
        "df = pd.DataFrame(rng.normal(size=(4000, 8)), columns=[f'f{i}' for i in range(8)])\n"
        "df['target'] = (df.f0 + rng.normal(size=4000) > 0).astype(int)",
        "mlkit.train.xgboost(df, 'target', params={'objective': 'binary:logistic', "
        "'max_depth': 6}, rounds=3000, name='interrupt-xgb')",
        lambda out, sc: _train_events(sc) >= 3,
        True,
    ),
    "torch": (
        "import mlkit, numpy as np, pandas as pd, torch\n"
        "rng = np.random.default_rng(1)\n"
        "tdf = pd.DataFrame(rng.normal(size=(2000, 4)), columns=list('abcd'))\n"
        "tdf['y'] = tdf.a - tdf.b\n"
        "def train_fn(ctx):\n"
        "    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1))\n"
        "    model = ctx.prepare(net)\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.01)\n"
        "    for epoch in range(ctx.epochs):\n"
        "        for X, y in ctx.batches(20, target='y', features=list('abcd')):\n"
        "            opt.zero_grad()\n"
        "            loss = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)\n"
        "            loss.backward(); opt.step()\n"
        "        ctx.report(loss=loss.item())\n"
        "    return 1",
        "mlkit.train.torch(train_fn, data=tdf, epochs=100000, name='interrupt-torch')",
        lambda out, sc: _train_events(sc) >= 3,
        True,
    ),
    "study": (
        "import mlkit\n"
        "def objective(trial):\n"
        "    import time\n"
        "    x = trial.suggest_float('x', -10, 10)\n"
        "    for step in range(100):\n"
        "        time.sleep(0.1)\n"
        "        trial.report((x - 2) ** 2, step)\n"
        "    return (x - 2) ** 2",
        "mlkit.tune.tune(objective, 100, study_name='interrupt-study')",
        lambda out, sc: sc.run_on_scheduler(_processing) >= 2,
        True,
    ),
    "sweep": (
        "import mlkit, pathlib\n"
        f"nb = {str(NOTEBOOKS / 'timeout1.ipynb')!r}\n"
        "out = pathlib.Path('sweep-out')",
        "mlkit.jobs.sweep(nb, {'seconds': [600, 601, 602]}, output=out)",
        lambda out, sc: len(list(Path(sc._kernel_home, "sweep-out").glob(".*.partial.ipynb")))
        >= 2,
        True,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_interrupt_keeps_the_cluster(kernel, side, kernel_home, case):
    setup, code, ready, tracked = CASES[case]
    side._kernel_home = kernel_home
    side._old_topics = set(side.get_events())
    kernel.ok(setup)
    before = set(side.scheduler_info(n_workers=-1)["workers"])
    pids_before = side.run(os.getpid)
    assert len(before) == 2
    since = time.time()

    reply = kernel.interrupt_during(
        code, lambda out: ready(out, side), what=f"{case}: work under way", timeout=300
    )

    assert reply.status == "error" and reply.ename == "KeyboardInterrupt", (reply, reply.stderr)
    after = set(side.scheduler_info(n_workers=-1)["workers"])
    kept = len(before & after)
    RESULTS[case] = {"seconds": round(reply.seconds, 2), "workers_kept": f"{kept}/{len(before)}"}
    print(f"\nINTERRUPT {case}: control back in {reply.seconds:.2f} s, "
          f"workers kept {kept}/{len(before)}")
    assert reply.seconds < CONTROL_BACK_CEILING
    assert after == before and side.run(os.getpid) == pids_before
    # ... and they take new work, from the kernel's own client
    assert kernel.ok("print(client.submit(lambda: 1, pure=False).result(timeout=120))",
                     timeout=180).strip() == "1"
    # nothing of the interrupted call is left on the scheduler or running on a worker
    wait_for(lambda: not side.run_on_scheduler(_scheduler_tasks), timeout=120,
             what=f"{case}: no task left on the scheduler")
    wait_for(lambda: not any(side.run(_executing).values()), timeout=120,
             what=f"{case}: no task still executing on a worker")
    if tracked:
        runs = _runs(kernel_home, since)
        statuses = sorted({r.info.status for r in runs})
        assert runs and "RUNNING" not in statuses and "KILLED" in statuses, statuses


def test_shutting_the_kernel_down_leaves_no_process_behind(kernel):
    cluster_pids = kernel_json(kernel, "__import__('mlkit').cluster.current().deploy.pids()")
    procs = [psutil.Process(p) for p in [kernel.pid, *cluster_pids]]
    procs += _children(kernel.pid)
    print("\nINTERRUPT summary:", RESULTS)
    kernel.km.shutdown_kernel(now=False)

    def none_alive():
        return not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    wait_for(none_alive, timeout=60, what="the kernel and its cluster's processes to end")
