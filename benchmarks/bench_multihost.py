"""Multi-host benchmark on the network-namespace test hosts (needs root; see tests/multihost).

In one run, on a scheduler and two worker hosts with no shared disk, from a client host:
- the connect preflight (median of 5 probes, milliseconds);
- 40 trials of 0.25 s through ``mlkit.tune.tune`` on the two remote workers (default storage,
  i.e. DaskStorage) vs the same study run sequentially with plain Optuna on the client.

- xgboost on 1M x 28 rows (generated on the workers and persisted there: no disk involved),
  ``mlkit.train.xgboost`` vs raw ``xgboost.dask.train`` on the same persisted frame, interleaved
  repeats, medians; the overhead is mlkit's time over raw's, minus one. mlkit evaluates the
  training set every round (its history and progress need a metric), so raw is timed twice:
  bare, and with the same ``evals=[(dtrain, "train")]`` a user wanting that history passes.

Prints one JSON line.
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

import dask.array as da, dask.dataframe as dd, xgboost as xgb
X = da.random.RandomState(0).random_sample((1_000_000, 28), chunks=(250_000, 28))
y = ((X[:, 0] + X[:, 1]) > 1).astype('float64')
cols = [f'f{i}' for i in range(28)]
ddf = dd.from_dask_array(da.concatenate([X, y[:, None]], axis=1), columns=cols + ['target'])
ddf = c.client.persist(ddf)
from distributed import wait
wait(ddf)
params = {'objective': 'binary:logistic', 'tree_method': 'hist', 'max_depth': 6}
ROUNDS = int(XGB_ROUNDS)
# one untimed pair first: the workers' first xgboost call (imports, the tracker) would land
# on whichever side runs first (16.0 s vs 8.0 s warm in the first run of this bench)
mlkit.train.xgboost(ddf, 'target', params=params, rounds=2, track=False, progress=False)
xgb.dask.train(c.client, params, xgb.dask.DaskDMatrix(c.client, ddf[cols], ddf['target']),
               num_boost_round=2)
t_mk, t_raw, t_raw_ev = [], [], []
for _ in range(int(XGB_REPEATS)):
    t = time.perf_counter()
    mlkit.train.xgboost(ddf, 'target', params=params, rounds=ROUNDS, track=False, progress=False)
    t_mk.append(time.perf_counter() - t)
    t = time.perf_counter()
    dtrain = xgb.dask.DaskDMatrix(c.client, ddf[cols], ddf['target'])
    xgb.dask.train(c.client, params, dtrain, num_boost_round=ROUNDS)
    t_raw.append(time.perf_counter() - t)
    t = time.perf_counter()
    dtrain = xgb.dask.DaskDMatrix(c.client, ddf[cols], ddf['target'])
    xgb.dask.train(c.client, params, dtrain, num_boost_round=ROUNDS, evals=[(dtrain, 'train')])
    t_raw_ev.append(time.perf_counter() - t)
xgb_mk, xgb_raw = statistics.median(t_mk), statistics.median(t_raw)
xgb_raw_ev = statistics.median(t_raw_ev)
result = {"bench": "multihost", "hosts": c.preflight.hosts,
          "shared_disk": c.preflight.shared_disk,
          "preflight_ms_median": round(1000 * statistics.median(probes), 1),
          "tune_40x0.25s_mlkit_s": round(t_mlkit, 2), "tune_40x0.25s_sequential_s": round(t_seq, 2),
          "tune_speedup": round(t_seq / t_mlkit, 2),
          "complete": sum(t.state.name == 'COMPLETE' for t in study.trials),
          "xgboost_1Mx28_rounds": ROUNDS, "xgboost_mlkit_s": round(xgb_mk, 2),
          "xgboost_raw_s": round(xgb_raw, 2),
          "xgboost_overhead_pct": round(100 * (xgb_mk / xgb_raw - 1), 1),
          "xgboost_raw_with_evals_s": round(xgb_raw_ev, 2),
          "xgboost_overhead_vs_raw_with_evals_pct": round(100 * (xgb_mk / xgb_raw_ev - 1), 1),
          "xgboost_runs_mlkit_s": [round(v, 2) for v in t_mk],
          "xgboost_runs_raw_s": [round(v, 2) for v in t_raw],
          "xgboost_runs_raw_with_evals_s": [round(v, 2) for v in t_raw_ev]}
"""


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="xgboost boosting rounds")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved xgboost repeats")
    args = parser.parse_args()
    reason = _hosts.why_unavailable()
    if reason:
        raise SystemExit(f"bench_multihost needs test hosts: {reason}")
    with _hosts.TestNet(["scheduler", "worker1", "worker2", "client"], tag="b") as net:
        address = net.start_scheduler("scheduler")
        for h in ("worker1", "worker2"):
            net.start_worker(h, address)
        s = _hosts.Session(net["client"])
        try:
            code = (CODE.replace("ADDRESS", repr(address))
                    .replace("XGB_ROUNDS", str(args.rounds))
                    .replace("XGB_REPEATS", str(args.repeats)))
            print(json.dumps(s.ok(code, "result", timeout=1800)))
        finally:
            s.close()


if __name__ == "__main__":
    main()
