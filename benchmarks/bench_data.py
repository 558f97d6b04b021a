"""Benchmark: preprocessing a Parquet dataset with mlkit on a 2-worker cluster vs pandas +
scikit-learn in one process, in the same benchmark run.

Data: ``mlkit.data.synthetic`` -- ROWS x 20 numeric (1% missing) + 3 categorical columns (5
values each), Parquet, written once before timing (and reused by later runs).

Task, identical on both sides: read the Parquet dataset, FIT impute (mean / most frequent) +
standard scaling + one-hot encoding, APPLY it, and write the 35 feature columns to Parquet.

* mlkit: ``read`` -> ``make_preprocessor(...).fit`` (passes of per-partition statistics on the
  cluster) -> ``write(prep.transform(df))`` on a LocalCluster of 2 workers x 1 thread.
* baseline: ``pandas.read_parquet`` -> ``sklearn`` ``ColumnTransformer`` (``SimpleImputer`` +
  ``StandardScaler`` / ``SimpleImputer`` + ``OneHotEncoder``) ``fit_transform`` ->
  ``DataFrame.to_parquet``, which is what a user would otherwise write.

Each repetition runs in a fresh process (spawned by this script), so peak memory is measured
cleanly: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the peak resident set size of the process
that runs the user's code (for mlkit the client; the workers' combined peak RSS, sampled every
50 ms with psutil, is reported separately). Cluster start-up is outside the timing. Figures are
medians over ``--repeats``. Prints ONE JSON line.

    python benchmarks/bench_data.py                 # 5,000,000 rows, 3 repeats
    python benchmarks/bench_data.py --rows 2000000
    python benchmarks/bench_data.py --quick         # 500,000 rows, 3 repeats
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import threading
import time

NUMERIC, CATEGORICAL = 20, 3


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _WorkerSampler:
    """Peak of the summed RSS of this process's children (the cluster's worker processes)."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for child in self.me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except Exception:
                    pass
            self.peak = max(self.peak, total / 2**20)
            time.sleep(0.05)

    def __enter__(self) -> _WorkerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _warm() -> None:
    import pyarrow.parquet  # noqa: F401

    import mlkit.data._prep.compose  # noqa: F401


def _run_mlkit(data: str, out: str, queue: mp.Queue) -> None:
    import mlkit

    cluster = mlkit.cluster.up(workers=2, threads_per_worker=1, memory_limit="4GB",
                               dashboard=False)
    # A user's cluster is warm: import the libraries in the workers before timing, as the
    # baseline process imports pandas and sklearn before its clock starts.
    cluster.client.run(_warm)
    try:
        with _WorkerSampler() as sampler:
            start = time.perf_counter()
            df = mlkit.data.read(data)
            prep = mlkit.data.make_preprocessor(df, exclude=["target"]).fit(df, progress=False)
            mlkit.data.write(prep.transform(df), out, progress=False)
            seconds = time.perf_counter() - start
        queue.put({"seconds": seconds, "client_peak_mb": _peak_rss_mb(),
                   "workers_peak_mb": sampler.peak, "features": len(prep.get_feature_names_out())})
    finally:
        mlkit.cluster.down()


def _run_baseline(data: str, out: str, queue: mp.Queue) -> None:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    start = time.perf_counter()
    df = pd.read_parquet(data)
    num = [f"f{i}" for i in range(NUMERIC)]
    cat = [f"c{i}" for i in range(CATEGORICAL)]
    prep = ColumnTransformer(
        [("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), num),
         ("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                           ("encode", OneHotEncoder(sparse_output=False,
                                                    handle_unknown="ignore"))]), cat)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    features = prep.fit_transform(df)
    os.makedirs(out)
    features.to_parquet(os.path.join(out, "part.0.parquet"), index=False)
    seconds = time.perf_counter() - start
    queue.put({"seconds": seconds, "client_peak_mb": _peak_rss_mb(),
               "features": features.shape[1]})


def _once(target, data: str, scratch: str) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    out = os.path.join(scratch, f"out-{target.__name__}")
    shutil.rmtree(out, ignore_errors=True)
    proc = ctx.Process(target=target, args=(data, out, queue))
    proc.start()
    result = queue.get(timeout=3600)
    proc.join()
    shutil.rmtree(out, ignore_errors=True)
    return result


def _prepare(rows: int, folder: str) -> str:
    import mlkit

    mlkit.cluster.up(workers=2, threads_per_worker=1, memory_limit="4GB", dashboard=False)
    try:
        return mlkit.data.synthetic(
            os.path.join(folder, f"synthetic-{rows}"), rows=rows, features=NUMERIC,
            categorical=CATEGORICAL, categories=5, missing=0.01, seed=0, progress=False,
        )
    finally:
        mlkit.cluster.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--quick", action="store_true", help="500,000 rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "mlkit-bench"))
    args = parser.parse_args()
    rows = 500_000 if args.quick else args.rows
    os.makedirs(args.data_dir, exist_ok=True)
    data = _prepare(rows, args.data_dir)
    scratch = tempfile.mkdtemp(prefix="mlkit-bench-data-")
    runs: dict[str, list[dict]] = {"mlkit": [], "baseline": []}
    try:
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            runs["mlkit"].append(_once(_run_mlkit, data, scratch))
            runs["baseline"].append(_once(_run_baseline, data, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    mlkit_rps = rows / med("mlkit", "seconds")
    base_rps = rows / med("baseline", "seconds")
    assert runs["mlkit"][0]["features"] == runs["baseline"][0]["features"]
    print(json.dumps({
        "bench": "data",
        "task": "read parquet + fit/apply impute, standard scale, one-hot + write parquet",
        "rows": rows,
        "columns": f"{NUMERIC} numeric + {CATEGORICAL} categorical -> "
                   f"{runs['mlkit'][0]['features']} features",
        "repeats": args.repeats,
        "mlkit_rows_per_s": round(mlkit_rps),
        "baseline_rows_per_s": round(base_rps),
        "throughput_ratio": round(mlkit_rps / base_rps, 2),
        "mlkit_client_peak_rss_mb": round(med("mlkit", "client_peak_mb")),
        "baseline_peak_rss_mb": round(med("baseline", "client_peak_mb")),
        "client_memory_ratio": round(med("mlkit", "client_peak_mb")
                                     / med("baseline", "client_peak_mb"), 3),
        "mlkit_workers_peak_rss_mb": round(med("mlkit", "workers_peak_mb")),
        "memory_measure": "ru_maxrss of a fresh process per run (workers: psutil RSS sum, 50 ms)",
        "cluster": "LocalCluster 2 workers x 1 thread",
    }))


if __name__ == "__main__":
    main()
