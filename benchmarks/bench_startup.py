"""Startup costs: `import mlkit` vs `import dask`, `%load_ext mlkit`, and `mlkit.cluster.up`
vs a bare `LocalCluster` + `Client` with the same settings.

Every figure is the median of --repeats runs measured in this one process run (imports in fresh
subprocesses, since a module imports only once per process). Prints one JSON line.

    python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

IMPORT_TIMER = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
LOAD_EXT = (
    "from IPython.core.interactiveshell import InteractiveShell; ip = InteractiveShell.instance(); "
    "import time; t = time.perf_counter(); ip.run_line_magic('load_ext', 'mlkit'); "
    "print(time.perf_counter() - t)"
)


def _subprocess_seconds(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _median_import(stmt: str, repeats: int) -> float:
    return statistics.median(
        _subprocess_seconds(IMPORT_TIMER.format(stmt=stmt)) for _ in range(repeats)
    )


def _bare_cluster_seconds(workers: int) -> float:
    from distributed import Client, LocalCluster

    t = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        scheduler_port=0, dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    client.wait_for_workers(workers)
    dt = time.perf_counter() - t
    client.close()
    cluster.close()
    return dt


def _mlkit_cluster_seconds(workers: int) -> float:
    import mlkit

    t = time.perf_counter()
    mlkit.cluster.up(workers=workers, threads_per_worker=1)
    dt = time.perf_counter() - t
    mlkit.cluster.down()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("MLKIT_HOME", tempfile.mkdtemp(prefix="mlkit-bench-"))

    import_mlkit = _median_import("import mlkit", args.repeats)
    import_dask = _median_import("import dask", args.repeats)
    load_ext = statistics.median(_subprocess_seconds(LOAD_EXT) for _ in range(args.repeats))

    # Warm both paths once (first start pays for imports), then alternate to share the noise.
    _bare_cluster_seconds(args.workers)
    _mlkit_cluster_seconds(args.workers)
    bare, mine = [], []
    for _ in range(args.repeats):
        bare.append(_bare_cluster_seconds(args.workers))
        mine.append(_mlkit_cluster_seconds(args.workers))
    up_s, bare_s = statistics.median(mine), statistics.median(bare)
    print(json.dumps({
        "bench": "startup",
        "repeats": args.repeats,
        "import_mlkit_s": round(import_mlkit, 4),
        "import_dask_s": round(import_dask, 4),
        "import_ratio": round(import_mlkit / import_dask, 3),
        "load_ext_s": round(load_ext, 4),
        "workers": args.workers,
        "mlkit_up_s": round(up_s, 3),
        "bare_localcluster_s": round(bare_s, 3),
        "up_ratio": round(up_s / bare_s, 3),
        "goals": {"import_ratio": "<= 1.5", "up_ratio": "<= 1.10"},
    }))


if __name__ == "__main__":
    main()
