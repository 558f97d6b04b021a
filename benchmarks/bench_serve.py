"""Serving benchmark: mlkit's managed server vs ``mlflow models serve`` by hand; batch_predict
on a 2-worker cluster vs the same rows through REST in batches of 100.

(a) 8 concurrent clients send single-row requests to three servers of the same model, in
    interleaved rounds: ``mlkit.serve.start(model)`` (the default: MLflow's CLI, managed),
    ``mlflow models serve -m MODEL --env-manager local`` started by hand (the baseline), and
    ``mlkit.serve.start(model, metrics=True, log_predictions=True)`` (mlkit's instrumented app).
    Reports p50 / p99 latency and requests/s (median over rounds) and mlkit/baseline ratios.
(b) rows/s of ``mlkit.serve.batch_predict(ddf, model).compute()`` on a 2-worker LocalCluster vs
    posting the same rows to the REST endpoint in batches of 100 from one client (median of 3;
    the batch figure after one warm-up call, which loads the model in each worker and is
    reported on its own).

The model: a scikit-learn pipeline taking raw columns (3 numbers + 1 string; imputer, scaler,
one-hot encoder, logistic regression), logged with a signature, as in the tests.

Usage::

    python benchmarks/bench_serve.py            # 8 x 150 requests per round, 100k rows
    python benchmarks/bench_serve.py --quick    # 8 x 40 requests per round, 50k rows

Prints ONE JSON line. Loopback only; the figures of a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _model(n: int, seed: int = 0):
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["f0", "f1", "f2"])
    X["color"] = rng.choice(["red", "green", "blue"], n)
    y = ((X.f0 + X.f1 + (X.color == "red")) > 0.5).astype("int64")
    pre = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["f0", "f1", "f2"]),
    ])
    return X, Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(X, y)


def _log(model, X) -> str:
    import mlflow
    from mlflow.models import infer_signature

    import mlkit

    with mlkit.track.run("bench-serve"):
        mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X, model.predict(X)),
            registered_model_name="bench", skops_trusted_types=["numpy.dtype"],
            pip_requirements=["scikit-learn"],
        )
    return "models:/bench/1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_by_hand(uri: str, tracking_uri: str, log: Path):
    """What a user types: ``mlflow models serve -m URI --env-manager local -p PORT``."""
    import requests

    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1",
         "-p", str(port)], env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.25)
        if proc.poll() is not None:
            break
    raise RuntimeError(f"mlflow models serve did not start:\n{log.read_text()[-2000:]}")


def _load(url: str, bodies: list[str], clients: int, per_client: int) -> dict:
    """``clients`` threads, each with its own keep-alive connection, ``per_client`` requests."""
    import requests

    latencies: list[float] = []
    lock = threading.Lock()
    errors = []
    barrier = threading.Barrier(clients + 1)

    def worker(k: int) -> None:
        session = requests.Session()
        session.trust_env = False
        mine = []
        session.post(f"{url}/invocations", data=bodies[k], timeout=60,
                     headers={"Content-Type": "application/json"})  # open the connection
        barrier.wait()
        for i in range(per_client):
            body = bodies[(k * per_client + i) % len(bodies)]
            t0 = time.perf_counter()
            resp = session.post(f"{url}/invocations", data=body, timeout=60,
                                headers={"Content-Type": "application/json"})
            mine.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                errors.append(resp.status_code)
        with lock:
            latencies.extend(mine)
        session.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed: {sorted(set(errors))}")
    latencies.sort()
    return {
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "rps": len(latencies) / wall,
    }


def _median(rounds: list[dict]) -> dict:
    return {k: round(statistics.median(r[k] for r in rounds), 3) for k in rounds[0]}


def _rest_rows_per_s(url: str, X, batch: int = 100) -> float:
    import requests

    session = requests.Session()
    session.trust_env = False
    start = time.perf_counter()
    for i in range(0, len(X), batch):
        chunk = X.iloc[i:i + batch]
        body = json.dumps({"dataframe_split": chunk.to_dict(orient="split")})
        resp = session.post(f"{url}/invocations", data=body, timeout=120,
                            headers={"Content-Type": "application/json"})
        resp.raise_for_status()
    return len(X) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    per_client, rows = (40, 50_000) if args.quick else (150, 100_000)
    clients = 8

    home = Path(tempfile.mkdtemp(prefix="mlkit-bench-serve-"))
    os.environ["MLKIT_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import dask.dataframe as dd

    import mlkit

    tracking_uri = mlkit.track.configure("bench-serve")
    X, model = _model(2_000)
    uri = _log(model, X)
    bodies = [json.dumps({"dataframe_split": X.iloc[[i]].to_dict(orient="split")})
              for i in range(200)]

    # (a) latency and throughput, interleaved rounds
    managed = mlkit.serve.start(uri, name="bench-mlkit")
    hand, hand_url = _start_by_hand(uri, tracking_uri, home / "by-hand.log")
    inst = mlkit.serve.start(uri, name="bench-inst", metrics=True, log_predictions=True)
    results: dict[str, list[dict]] = {"mlkit": [], "mlflow_by_hand": [], "mlkit_instrumented": []}
    try:
        urls = {"mlkit": managed.url, "mlflow_by_hand": hand_url, "mlkit_instrumented": inst.url}
        for url in urls.values():  # warm-up
            _load(url, bodies, clients, 5)
        for _ in range(args.rounds):
            for name, url in urls.items():
                results[name].append(_load(url, bodies, clients, per_client))
        # (b) batch: the same rows through REST in batches of 100, from one client
        Xb, _ = _model(rows, seed=1)
        rest = [_rest_rows_per_s(managed.url, Xb) for _ in range(args.rounds)]
    finally:
        managed.stop()
        inst.stop()
        os.killpg(hand.pid, 15)
        hand.wait(timeout=30)

    cluster = mlkit.cluster.up(workers=2, threads_per_worker=1)
    try:
        ddf = dd.from_pandas(Xb, npartitions=8)
        t0 = time.perf_counter()  # the first call also loads the model in each worker
        mlkit.serve.batch_predict(ddf, uri).compute()
        first_call = time.perf_counter() - t0
        batch = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            out = mlkit.serve.batch_predict(ddf, uri).compute()
            batch.append(len(out) / (time.perf_counter() - t0))
        assert out.tolist() == model.predict(Xb).tolist()
    finally:
        mlkit.cluster.down()
    del cluster

    lat = {k: _median(v) for k, v in results.items()}
    base = lat["mlflow_by_hand"]
    report = {
        "bench": "serve",
        "size": {"clients": clients, "requests_per_round": clients * per_client,
                 "rounds": args.rounds, "batch_rows": rows, "quick": args.quick},
        "latency_1row_8clients": lat,
        "mlkit_vs_mlflow": {
            "rps_ratio": round(lat["mlkit"]["rps"] / base["rps"], 3),
            "p50_ratio": round(lat["mlkit"]["p50_ms"] / base["p50_ms"], 3),
            "p99_ratio": round(lat["mlkit"]["p99_ms"] / base["p99_ms"], 3),
        },
        "instrumented_vs_mlflow": {
            "rps_ratio": round(lat["mlkit_instrumented"]["rps"] / base["rps"], 3),
            "p50_ratio": round(lat["mlkit_instrumented"]["p50_ms"] / base["p50_ms"], 3),
        },
        "batch_rows_per_s": {
            "batch_predict_2_workers": round(statistics.median(batch)),
            "rest_batches_of_100": round(statistics.median(rest)),
            "ratio": round(statistics.median(batch) / statistics.median(rest), 2),
            "first_call_incl_model_load_s": round(first_call, 2),
        },
        "note": "loopback, shared 2-core machine; medians over rounds",
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
