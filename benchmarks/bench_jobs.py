"""Benchmark: notebook jobs through mlkit vs plain papermill, in one process run.

* sweep: N notebooks that each take about S seconds (a ``time.sleep`` cell after a parameters
  cell), through ``mlkit.jobs.sweep`` on a 2-worker, 1-thread LocalCluster (one kernel per Dask
  task, parent + child MLflow runs) vs ``papermill.execute_notebook`` one after another, which is
  what a user would otherwise script. Goal: speedup >= 1.7x.
* single job: ``mlkit.jobs.run`` (validation, watchdog, MLflow run with lineage, artifacts) vs
  ``papermill.execute_notebook`` on the same notebook, interleaved. Goal: ratio <= 1.15x.

Both sides are warmed up first (imports, the MLflow SQLite store, the workers' imports), and each
figure is the median over ``--repeats``. Prints ONE JSON line.

    python benchmarks/bench_jobs.py            # 8 notebooks x 2 s, 3 repeats
    python benchmarks/bench_jobs.py --quick    # 4 notebooks x 1 s, 1 repeat (sweep), 3 (single)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _notebook(folder: Path, seconds: float) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    params = new_code_cell(f"seed = 0\nseconds = {seconds}")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[
            params,
            new_code_cell("import time\nimport mlkit"),
            new_code_cell("time.sleep(seconds)\nvalue = seed * 2"),
            new_code_cell("mlkit.jobs.record(value=value)"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )
    path = folder / "sleepy.ipynb"
    nbformat.write(nb, path)
    return path


def _papermill(nb: Path, out_dir: Path, seed: int) -> None:
    import papermill

    papermill.execute_notebook(
        str(nb), str(out_dir / f"pm-{seed}.ipynb"), parameters={"seed": seed},
        kernel_name="python3", progress_bar=False,
    )


def _timed(fn, *args, **kw) -> float:
    t0 = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8, help="notebooks in the sweep")
    parser.add_argument("--seconds", type=float, default=2.0, help="sleep per notebook")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (median)")
    parser.add_argument("--quick", action="store_true", help="4 jobs x 1 s, one sweep repeat")
    args = parser.parse_args()
    sweep_repeats = args.repeats
    if args.quick:
        args.jobs, args.seconds, sweep_repeats = 4, 1.0, 1

    # kernels and papermill need the venv's bin first on PATH (the Makefile does the same)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    os.environ["MLKIT_HOME"] = str(work / "home")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("MLKIT_DASHBOARD", "0")
    import mlkit

    nb = _notebook(work, args.seconds)
    pm_out = work / "papermill"
    pm_out.mkdir()
    try:
        # warm-up: imports, the MLflow store (created on first use), the kernel's files in cache
        _papermill(nb, pm_out, 0)
        mlkit.jobs.run(nb, {"seed": 0}, progress=False)

        single_pm, single_mk = [], []
        for r in range(args.repeats):
            single_pm.append(_timed(_papermill, nb, pm_out, r))
            single_mk.append(_timed(mlkit.jobs.run, nb, {"seed": r}, progress=False))

        mlkit.cluster.up(workers=2, threads_per_worker=1, dashboard=False)
        mlkit.jobs.sweep(nb, {"seed": [0, 1]}, progress=False, verbose=False)  # worker warm-up
        seq, par = [], []
        for _ in range(sweep_repeats):
            t0 = time.perf_counter()
            for seed in range(args.jobs):
                _papermill(nb, pm_out, seed)
            seq.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            table = mlkit.jobs.sweep(
                nb, {"seed": list(range(args.jobs))}, progress=False, verbose=False
            )
            par.append(time.perf_counter() - t0)
            assert (table["status"] == "ok").all(), table
    finally:
        mlkit.cluster.down()
        shutil.rmtree(work, ignore_errors=True)

    pm1, mk1 = statistics.median(single_pm), statistics.median(single_mk)
    s_seq, s_par = statistics.median(seq), statistics.median(par)
    print(json.dumps({
        "benchmark": "jobs",
        "size": {"sweep_jobs": args.jobs, "seconds_per_notebook": args.seconds,
                 "repeats_single": args.repeats, "repeats_sweep": sweep_repeats,
                 "workers": 2, "threads_per_worker": 1},
        "sweep": {"papermill_sequential_s": round(s_seq, 2), "mlkit_sweep_s": round(s_par, 2),
                  "speedup": round(s_seq / s_par, 2), "goal": ">= 1.7"},
        "single_job": {"papermill_s": round(pm1, 2), "mlkit_run_s": round(mk1, 2),
                       "overhead_ratio": round(mk1 / pm1, 3), "goal": "<= 1.15"},
        "machine": f"{os.cpu_count()} cores, shared (load average {os.getloadavg()[0]:.1f})",
    }))


if __name__ == "__main__":
    main()
