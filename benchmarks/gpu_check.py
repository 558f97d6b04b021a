"""`make gpu-check`: prove the GPU path on real hardware, or say there is none and exit 0.

On a machine where NVML sees an NVIDIA GPU it:
1. starts a Dask-CUDA cluster through mlkit (one worker per GPU) and times the start;
2. writes the same synthetic table (default 11M x 28, the HIGGS shape) and trains xgboost on it
   through mlkit on the GPU cluster and on a CPU cluster of the same machine: GPU/CPU speedup;
3. trains the same data with bare single-GPU `xgboost.train` to measure mlkit's overhead;
4. runs a DDP job with nccl through `mlkit.train.torch` and reports the mean step time.
It prints one JSON line with the figures.

    python benchmarks/gpu_check.py [--rows 11000000] [--rounds 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def _no_gpu(reason: str) -> None:
    print(f"gpu-check: no NVIDIA GPU visible ({reason}); nothing to check on this machine.")
    print(json.dumps({"bench": "gpu_check", "gpu": False, "reason": reason}))


def _ddp_fn(ctx):  # runs on every rank
    import torch

    torch.manual_seed(0)
    model = ctx.prepare(
        torch.nn.Sequential(torch.nn.Linear(28, 512), torch.nn.ReLU(), torch.nn.Linear(512, 1))
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    times = []
    for _ in range(ctx.epochs):
        for X, y in ctx.batches(4096, target="target"):
            if ctx.device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(X).squeeze(-1), y.float()
            )
            loss.backward()
            opt.step()
            if ctx.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    steady = sorted(times[5:] or times)
    ctx.report(step_s=ctx.mean(steady[len(steady) // 2]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=11_000_000)
    ap.add_argument("--features", type=int, default=28)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--cpu-workers", type=int, default=None)
    args = ap.parse_args()
    os.environ.setdefault("MLKIT_HOME", tempfile.mkdtemp(prefix="mlkit-gpu-check-"))

    import mlkit

    found = mlkit.cluster.gpus()
    if not found:
        _no_gpu(found.reason or "NVML sees no GPU")
        return 0

    import xgboost as xgb

    figures: dict = {"bench": "gpu_check", "gpu": True, "gpus": [g.name for g in found.gpus]}
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": 8,
        "eval_metric": "logloss",
        "seed": 0,
    }
    t = time.perf_counter()
    mlkit.cluster.up(gpus="all")
    figures["cuda_cluster_start_s"] = round(time.perf_counter() - t, 2)

    path = os.path.join(os.environ["MLKIT_HOME"], "higgs_shape")
    mlkit.data.synthetic(
        path, rows=args.rows, features=args.features, seed=0, partitions=max(len(found.gpus) * 4, 8)
    )
    ddf = mlkit.data.read(path)

    def timed_train(frame):
        t0 = time.perf_counter()
        res = mlkit.train.xgboost(
            frame, "target", params=params, rounds=args.rounds, progress=False, track=False
        )
        return time.perf_counter() - t0, res

    gpu_s, _ = timed_train(ddf.persist())
    figures["xgb_gpu_s"] = round(gpu_s, 2)

    # DDP with nccl, one rank per GPU, on a 1M-row slice.
    small = ddf.partitions[: max(1, ddf.npartitions // 8)].persist()
    out = mlkit.train.torch(
        _ddp_fn, data=small, backend="nccl", epochs=1, progress=False, track=False
    )
    figures["ddp_backend"] = out.backend
    figures["ddp_ranks"] = out.world_size
    figures["ddp_step_ms"] = round(1000 * float(out.history["step_s"].iloc[-1]), 3)

    # Bare single-GPU xgboost on the same rows, the baseline for mlkit's overhead.
    pdf = ddf.compute()
    X, y = pdf.drop(columns="target"), pdf["target"]
    dtrain = xgb.QuantileDMatrix(X, y)
    t0 = time.perf_counter()
    xgb.train({**params, "device": "cuda"}, dtrain, num_boost_round=args.rounds)
    figures["xgb_bare_single_gpu_s"] = round(time.perf_counter() - t0, 2)
    del dtrain
    if len(found.gpus) == 1:
        figures["mlkit_overhead_vs_bare_single_gpu"] = round(
            gpu_s / figures["xgb_bare_single_gpu_s"], 3
        )

    mlkit.cluster.up(
        workers=args.cpu_workers or max(1, (os.cpu_count() or 2) // 2),
        threads_per_worker=2,
        replace=True,
    )
    cpu_s, _ = timed_train(mlkit.data.read(path).persist())
    figures["xgb_cpu_s"] = round(cpu_s, 2)
    figures["xgb_gpu_speedup"] = round(cpu_s / gpu_s, 2)
    mlkit.cluster.down()
    figures.update(
        rows=args.rows,
        features=args.features,
        rounds=args.rounds,
        goals={
            "xgb_gpu_speedup": ">= 10",
            "cuda_cluster_start_s": "< 5",
            "mlkit_overhead_vs_bare_single_gpu": "<= 1.05",
        },
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
