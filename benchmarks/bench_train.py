"""Benchmark: distributed training through mlkit vs the code a user would otherwise write.

(a) xgboost, 2 workers, ROWS x 28 synthetic rows (``mlkit.data.synthetic``), 100 rounds hist:
    ``mlkit.train.xgboost`` (progress bar, MLflow run with lineage tags and per-round
    metrics: everything it does by default) vs ``xgboost.dask.train`` called directly on the
    same persisted data with the same params and evals, timed from the DaskDMatrix on. Also a
    single-process ``xgboost.train`` on the same rows (pandas in this process, nthread = the
    cluster's total threads).
(b) torch DDP samples/s on an MLP (28-256-256-1): ``mlkit.train.torch`` with 2 workers vs 1
    worker on the same data and per-rank batch size; scaling efficiency = sps2 / (2 * sps1).
(c) GPU vs CPU xgboost (11M x 28) needs a GPU: without one it is reported as skipped; with one,
    ``benchmarks/gpu_check.py`` (``make gpu-check``) runs it through mlkit.

Each pair runs once untimed first (first imports, the new MLflow store), then
medians over ``--repeats`` runs (the two sides of each pair alternate). Prints ONE JSON line.

    python benchmarks/bench_train.py                  # 1M rows, 3 repeats
    python benchmarks/bench_train.py --rows 200000    # smaller
    python benchmarks/bench_train.py --quick          # 200k rows, 20k-row MLP data, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

PARAMS = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 6,
          "eta": 0.1, "seed": 0}


def _log(msg: str) -> None:
    print(f"[bench_train] {msg}", file=sys.stderr, flush=True)


def bench_xgboost(client, ddf, rounds: int, repeats: int) -> dict:
    import xgboost as xgb
    import xgboost.dask as xgb_dask

    import mlkit

    params = {**PARAMS, "tree_method": "hist", "device": "cpu"}

    def run_mlkit() -> float:
        t = time.perf_counter()
        res = mlkit.train.xgboost(ddf, "target", params=params, rounds=rounds, name="bench")
        elapsed = time.perf_counter() - t
        assert res.booster.num_boosted_rounds() == rounds
        return elapsed

    def run_raw() -> float:
        t = time.perf_counter()
        X, y = ddf.drop(columns=["target"]), ddf["target"]
        dtrain = xgb_dask.DaskDMatrix(client, X, y)
        out = xgb_dask.train(client, params, dtrain, num_boost_round=rounds,
                             evals=[(dtrain, "train")], verbose_eval=False)
        elapsed = time.perf_counter() - t
        assert out["booster"].num_boosted_rounds() == rounds
        return elapsed

    # Warm-up, untimed: first imports (MLflow, its new SQLite store) happen once per session.
    run_mlkit()
    run_raw()
    ours, raw = [], []
    for i in range(repeats):
        for name, fn, sink in (("mlkit", run_mlkit, ours), ("xgboost.dask", run_raw, raw))[
            :: 1 if i % 2 == 0 else -1
        ]:
            sink.append(fn())
            _log(f"xgboost {name}: {sink[-1]:.2f} s")

    # single process on the same rows, as many threads as the cluster has
    nthreads = sum(w["nthreads"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
    pdf = ddf.compute()
    single = []
    for _ in range(repeats):
        t = time.perf_counter()
        dm = xgb.DMatrix(pdf.drop(columns=["target"]), pdf["target"], nthread=nthreads)
        xgb.train({**params, "nthread": nthreads}, dm, rounds, evals=[(dm, "train")],
                  verbose_eval=False)
        single.append(time.perf_counter() - t)
        _log(f"xgboost single process: {single[-1]:.2f} s")
    m, r, s = statistics.median(ours), statistics.median(raw), statistics.median(single)
    return {
        "rows": len(pdf), "features": pdf.shape[1] - 1, "rounds": rounds,
        "mlkit_s": round(m, 3), "xgboost_dask_s": round(r, 3), "single_process_s": round(s, 3),
        "overhead_vs_xgboost_dask": round(m / r - 1, 4),
        "mlkit_vs_single_process": round(m / s, 3),
    }


def _mlp_train(ctx):
    """Runs on each rank: a few epochs over the shard, timed after a warm-up epoch."""
    import time

    import torch

    torch.manual_seed(0)
    n = ctx.shard.shape[1] - 1
    model = ctx.prepare(torch.nn.Sequential(
        torch.nn.Linear(n, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 1)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def epoch(e: int) -> int:
        seen = 0
        for X, y in ctx.batches(ctx.params["batch"], target="target", epoch=e,
                                dtype=torch.float32):
            opt.zero_grad()
            loss_fn(model(X).squeeze(-1), y.float()).backward()
            opt.step()
            seen += len(X)
        return seen

    epoch(0)  # warm-up (allocations, first all-reduce buckets)
    start = time.perf_counter()
    seen = sum(epoch(e) for e in range(1, ctx.epochs))
    elapsed = time.perf_counter() - start
    return ctx.mean(seen) * ctx.world_size / elapsed if elapsed > 0 else 0.0


def bench_ddp(ddf, repeats: int, batch: int) -> dict:
    import mlkit

    sps: dict[int, list[float]] = {1: [], 2: []}
    # Warm-up, untimed: the workers import torch and join a first process group.
    mlkit.train.torch(_mlp_train, data=ddf, workers=2, epochs=2, params={"batch": batch},
                      progress=False, track=False)
    for i in range(repeats):
        for n in ((1, 2) if i % 2 == 0 else (2, 1)):
            res = mlkit.train.torch(_mlp_train, data=ddf, workers=n, epochs=3,
                                    params={"batch": batch}, name=f"bench-ddp-{n}")
            sps[n].append(res.value)
            _log(f"DDP {n} worker(s): {res.value:,.0f} samples/s")
    one, two = statistics.median(sps[1]), statistics.median(sps[2])
    return {
        "rows": len(ddf), "batch_per_rank": batch,
        "samples_per_s_1_worker": round(one, 1), "samples_per_s_2_workers": round(two, 1),
        "speedup": round(two / one, 3), "scaling_efficiency": round(two / (2 * one), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="xgboost rows (default 1M)")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--mlp-rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="200k rows, 20k MLP rows, 1 repeat")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.mlp_rows, args.repeats = 200_000, 20_000, 1

    os.environ.setdefault("MLKIT_DASHBOARD", "0")
    with tempfile.TemporaryDirectory(prefix="mlkit-bench-train-") as home:
        os.environ.setdefault("MLKIT_HOME", home)
        import mlkit

        cluster = mlkit.cluster.up(workers=2, threads_per_worker=1)
        try:
            client = cluster.client
            data = mlkit.data.synthetic(os.path.join(home, "xgb"), rows=args.rows, features=28,
                                        partitions=8, seed=0)
            ddf = client.persist(mlkit.data.read(data))
            mlp = mlkit.data.synthetic(os.path.join(home, "mlp"), rows=args.mlp_rows,
                                       features=28, partitions=4, seed=1)
            mlp_ddf = client.persist(mlkit.data.read(mlp))
            out = {"benchmark": "train", "machine": "shared 2-core CPU, no GPU"
                   if not mlkit.cluster.gpus() else "gpu"}
            out["xgboost"] = bench_xgboost(client, ddf, args.rounds, args.repeats)
            out["ddp"] = bench_ddp(mlp_ddf, args.repeats, batch=256)
            if mlkit.cluster.gpus():
                out["gpu"] = "GPU visible: run benchmarks/gpu_check.py for the GPU comparison"
            else:
                out["gpu"] = "skipped: no GPU visible (NVML sees none)"
                _log("no GPU is available: skipping the GPU vs CPU xgboost comparison")
        finally:
            mlkit.cluster.down()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
