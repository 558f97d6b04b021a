"""The toolbar's Interrupt button (the square) in a real JupyterLab: during a plain
``time.sleep`` and during a training, control comes back and the cluster keeps its workers."""

from __future__ import annotations

import re
import time

from tests._wait import wait_for
from tests.browser._lab import Cell, Notebook

NOTEBOOK = "interrupt.ipynb"
UP = "%mlscale up --workers 2 --threads 1 --memory 2GB"  # the shape of the rest of the suite
# Ceiling for "control comes back": the bug it guards against froze the cell for minutes.
CONTROL_BACK = 60

TRAIN = """import numpy as np, pandas as pd, mlkit
rng = np.random.default_rng(1)
X = rng.normal(size=(20000, 10))
df = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
df["y"] = (X[:, 0] * X[:, 1] + rng.normal(size=len(X)) > 0).astype(int)
result = mlkit.train.xgboost(df, "y", params={"objective": "binary:logistic", "max_depth": 6},
                             rounds=3000, name="browser-interrupt", track=False)"""


def interrupt_and_time(nb: Notebook, cell: Cell) -> float:
    t0 = time.monotonic()
    nb.interrupt()
    cell.wait_done(timeout=CONTROL_BACK)
    return time.monotonic() - t0


def assert_workers_kept(nb: Notebook) -> None:
    # A task round trip first: it needs live workers, and gives dying ones time to be noticed.
    assert nb.value("client.submit(sum, [1, 2], pure=False).result(timeout=20)") == "3"
    assert nb.value('len(client.scheduler_info()["workers"])') == "2"


def test_interrupt_during_sleep_keeps_the_workers(nb: Notebook):
    nb.open()
    nb.run("%load_ext mlkit")
    nb.run(UP)
    assert nb.value('len(client.scheduler_info()["workers"])') == "2"
    cell = nb.run("import time\ntime.sleep(60)", wait=False)
    wait_for(lambda: cell.running() and nb.kernel_status() == "busy", what="the sleep running")
    seconds = interrupt_and_time(nb, cell)
    print(f"\ninterrupt during time.sleep -> control back: {seconds:.1f} s")
    out = cell.output_text()
    assert "KeyboardInterrupt" in out
    assert not re.search(r"distributed\.(nanny|worker|core)", out), f"worker noise: {out[:400]!r}"
    assert_workers_kept(nb)


def test_interrupt_during_training_returns_control_and_keeps_the_workers(nb: Notebook):
    if nb.value('len(client.scheduler_info()["workers"])') != "2":
        # The previous test lost the workers (its own failure says so): start this one afresh.
        nb.run("%mlscale down")
        nb.run(UP)
    cell = nb.run(TRAIN, wait=False)

    def rounds_done() -> int:
        m = re.search(r"(\d+)/3000", cell.output_text())
        return int(m.group(1)) if m else 0

    wait_for(lambda: rounds_done() >= 3, timeout=150, what="3 training rounds")
    seconds = interrupt_and_time(nb, cell)
    print(f"\ninterrupt during mlkit.train.xgboost -> control back: {seconds:.1f} s")
    assert rounds_done() < 3000
    assert_workers_kept(nb)
    # The cluster trains again right away.
    again = nb.run(
        'again = mlkit.train.xgboost(df.head(2000), "y", rounds=3, progress=False, track=False)'
    )
    assert "Error" not in again.output_text(), again.output_text()[-800:]
    assert nb.value("again.booster.num_boosted_rounds()") == "3"
