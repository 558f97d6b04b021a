"""Benchmark: drift of N vs N rows x F features, mlkit on a 2-worker cluster vs pandas + scipy.

Both sides start from the same Parquet files (written by ``mlkit.data.synthetic``; the current
data has feature f3 shifted by 0.05 SD) and compute the same statistics per feature: the
two-sample KS test and the PSI on reference deciles.

* mlkit: ``mlkit.monitor.drift(read(ref), read(cur))`` on the cluster (two passes over the
  reference, one over the current data); also the same with a precomputed reference profile.
* baseline: ``pandas.read_parquet`` both tables into this process, then per feature
  ``scipy.stats.ks_2samp`` and the textbook PSI (numpy quantiles + counts).

Prints ONE JSON line: median seconds of each (over ``--repeats``), rows per second, the speed
ratio, and each one's peak memory in this (client) process above its starting point.

    python benchmarks/bench_monitor.py                 # 10M vs 10M x 20 features
    python benchmarks/bench_monitor.py --rows 2000000  # smaller
    python benchmarks/bench_monitor.py --quick         # 1M rows, 1 repeat
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import tempfile
import threading
import time

import numpy as np


class PeakRSS:
    """Peak resident memory of this process above its level at entry, sampled every 10 ms."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = 0

    def __enter__(self) -> PeakRSS:
        self.start = self._proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def baseline(ref_path: str, cur_path: str, features: list[str], shift: float) -> list[str]:
    """What a user would write without mlkit: everything in one pandas process."""
    import pandas as pd
    from scipy import stats

    ref = pd.read_parquet(ref_path, columns=features)
    cur = pd.read_parquet(cur_path, columns=features)
    cur["f3"] = cur["f3"] + shift
    drifted = []
    alpha = 0.05 / len(features)
    for f in features:
        a, b = ref[f].to_numpy(), cur[f].to_numpy()
        ks = stats.ks_2samp(a, b)
        edges = np.quantile(a, np.arange(1, 10) / 10)
        pr = np.bincount(np.searchsorted(edges, a), minlength=10) / len(a)
        pc = np.bincount(np.searchsorted(edges, b), minlength=10) / len(b)
        pr, pc = np.clip(pr, 1e-4, None), np.clip(pc, 1e-4, None)
        psi = float(np.sum((pc - pr) * np.log(pc / pr)))
        if ks.pvalue < alpha or psi >= 0.2:
            drifted.append(f)
    return drifted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in each table")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1M rows, 1 repeat")
    parser.add_argument("--dir", default=None, help="where to write the data (default: temp)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 1_000_000, 1

    import mlkit

    shift = 0.05
    features = [f"f{i}" for i in range(args.features)]
    tmp = args.dir or tempfile.mkdtemp(prefix="mlkit-bench-monitor-")
    os.environ.setdefault("MLKIT_HOME", os.path.join(tmp, "home"))
    cluster = mlkit.cluster.up(workers=args.workers, threads_per_worker=1)
    try:
        t0 = time.perf_counter()
        ref_path = mlkit.data.synthetic(os.path.join(tmp, "ref"), rows=args.rows,
                                        features=args.features, seed=1, overwrite=True,
                                        progress=False)
        cur_path = mlkit.data.synthetic(os.path.join(tmp, "cur"), rows=args.rows,
                                        features=args.features, seed=2, overwrite=True,
                                        progress=False)
        gen_s = time.perf_counter() - t0

        def frames():
            ref = mlkit.data.read(ref_path, columns=features)
            cur = mlkit.data.read(cur_path, columns=features)
            return ref, cur.assign(f3=cur["f3"] + shift)

        # Warm-up, untimed: first use imports pyarrow / mlkit.monitor on the workers and scipy
        # here; neither side should pay that inside its timings.
        ref, cur = frames()
        mlkit.monitor.drift(ref.partitions[0], cur.partitions[0], progress=False)
        first = [sorted(glob.glob(os.path.join(p, "*.parquet")))[0] for p in (ref_path, cur_path)]
        baseline(*first, features, shift)

        mk_times, mk_mem, mk_drifted = [], [], None
        for _ in range(args.repeats):
            with PeakRSS() as mem:
                t = time.perf_counter()
                report = mlkit.monitor.drift(*frames(), progress=False)
                mk_times.append(time.perf_counter() - t)
            mk_mem.append(mem.extra_mb)
            mk_drifted = report.drifted_features

        ref, _ = frames()
        profile = mlkit.monitor.reference_profile(ref, progress=False)
        prof_times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            mlkit.monitor.drift(profile, frames()[1], progress=False)
            prof_times.append(time.perf_counter() - t)

        base_times, base_mem, base_drifted = [], [], None
        for _ in range(args.repeats):
            with PeakRSS() as mem:
                t = time.perf_counter()
                base_drifted = baseline(ref_path, cur_path, features, shift)
                base_times.append(time.perf_counter() - t)
            base_mem.append(mem.extra_mb)
    finally:
        mlkit.cluster.down()
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)

    mk, base, prof = (statistics.median(x) for x in (mk_times, base_times, prof_times))
    total_rows = 2 * args.rows
    print(json.dumps({
        "bench": "monitor.drift",
        "rows_each": args.rows,
        "features": args.features,
        "workers": args.workers,
        "repeats": args.repeats,
        "mlkit_s": round(mk, 3),
        "mlkit_profile_reused_s": round(prof, 3),
        "pandas_scipy_s": round(base, 3),
        "speedup": round(base / mk, 2),
        "speedup_profile_reused": round(base / prof, 2),
        "mlkit_rows_per_s": round(total_rows / mk),
        "pandas_scipy_rows_per_s": round(total_rows / base),
        "mlkit_client_peak_mb": round(max(mk_mem), 1),
        "pandas_scipy_client_peak_mb": round(max(base_mem), 1),
        "memory_ratio": round(max(base_mem) / max(1.0, max(mk_mem)), 1),
        "same_verdict": mk_drifted == base_drifted,
        "drifted": mk_drifted,
        "data_generation_s": round(gen_s, 1),
        "cluster": cluster.kind,
        "note": "shared 2-core machine; figures are noisy",
    }))


if __name__ == "__main__":
    main()
