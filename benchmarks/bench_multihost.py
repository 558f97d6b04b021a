"""Multi-host benchmark on the network-namespace test hosts (needs root; see tests/multihost).

In one run, on a scheduler and two worker hosts with no shared disk, from a client host:
- the connect preflight (median of 5 probes, milliseconds);
- 40 trials of 0.25 s through ``mlkit.tune.tune`` on the two remote workers (default storage,
  i.e. DaskStorage) vs the same study run sequentially with plain Optuna on the client.

Prints one JSON line. Not done yet: xgboost 1M x 28 through mlkit vs raw xgboost.dask.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "multihost"))

import _hosts  # noqa: E402

CODE = """
import statistics, time, mlkit, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
c = mlkit.cluster.connect(ADDRESS)
c.client.wait_for_workers(2, timeout=120)
from mlkit.cluster import _preflight
probes = [_preflight.run(c.client).seconds for _ in range(5)]

def objective(trial):
    import time
    time.sleep(0.25)
    return trial.suggest_float('x', -1, 1) ** 2

mlkit.tune.tune(objective, n_trials=2, study_name='warm', progress=False, track=False)
t = time.perf_counter()
study = mlkit.tune.tune(objective, n_trials=40, study_name='bench', progress=False, track=False)
t_mlkit = time.perf_counter() - t
t = time.perf_counter()
optuna.create_study().optimize(objective, n_trials=40)
t_seq = time.perf_counter() - t
result = {"bench": "multihost", "hosts": c.preflight.hosts,
          "shared_disk": c.preflight.shared_disk,
          "preflight_ms_median": round(1000 * statistics.median(probes), 1),
          "tune_40x0.25s_mlkit_s": round(t_mlkit, 2), "tune_40x0.25s_sequential_s": round(t_seq, 2),
          "tune_speedup": round(t_seq / t_mlkit, 2),
          "complete": sum(t.state.name == 'COMPLETE' for t in study.trials)}
"""


def main() -> None:
    reason = _hosts.why_unavailable()
    if reason:
        raise SystemExit(f"bench_multihost needs test hosts: {reason}")
    with _hosts.TestNet(["scheduler", "worker1", "worker2", "client"], tag="b") as net:
        address = net.start_scheduler("scheduler")
        for h in ("worker1", "worker2"):
            net.start_worker(h, address)
        s = _hosts.Session(net["client"])
        try:
            print(json.dumps(s.ok(CODE.replace("ADDRESS", repr(address)), "result",
                                  timeout=600)))
        finally:
            s.close()


if __name__ == "__main__":
    main()
