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

(c) serving at scale, 1 / 8 / 32 concurrent clients sending single-row requests (different
    rows in turn), in interleaved rounds: ``mlkit.serve.start(model, replicas=2,
    max_batch_rows=64)`` (the gateway, 2 batching replicas) vs ``mlflow models serve -w 1`` and
    ``-w 2`` started by hand. Load generator: ``wrk`` (Debian's, C, epoll: it barely uses the
    cores it measures) with a Lua script rotating the bodies; without ``wrk`` on PATH an
    asyncio load generator (httpx.AsyncClient in its own process) is used and the JSON says
    which. Also: single-client p50 through the gateway vs one replica called directly (the
    gateway's overhead), failed requests while a replica is SIGKILLed under 8 clients, the
    gateway's start time, and the ratios to the 1-worker MLflow server.

The model: a scikit-learn pipeline taking raw columns (3 numbers + 1 string; imputer, scaler,
one-hot encoder, logistic regression), logged with a signature, as in the tests.

Usage::

    python benchmarks/bench_serve.py            # 8 x 150 requests per round, 100k rows
    python benchmarks/bench_serve.py --quick    # 8 x 40 requests per round, 50k rows
    python benchmarks/bench_serve.py --sections c --seconds 8 --rounds 3   # (c) only

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


# -- (c) serving at scale ------------------------------------------------------------------
_WRK_LUA = """
bodies = {%s}
i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("MLKIT %%d %%d %%d %%d %%d %%d %%f %%f\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), latency.mean))
end
"""


def _wrk(url: str, bodies: list[str], clients: int, seconds: float, script: Path) -> dict:
    """One wrk run: requests/s, p50/p99 (ms), failed requests (socket errors + non-2xx)."""
    import shutil

    if not script.exists():
        lua_bodies = ", ".join("[==[" + b + "]==]" for b in bodies)
        script.write_text(_WRK_LUA % lua_bodies)
    threads = max(1, min(2, clients))
    out = subprocess.run(
        [shutil.which("wrk"), "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s",
         "--timeout", "30s", "-s", str(script), f"{url}/invocations"],
        capture_output=True, text=True, timeout=seconds + 120,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("MLKIT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    n, sock, status, _dur, p50, p99, rps, _mean = line.split()[1:]
    return {"rps": float(rps), "p50_ms": int(p50) / 1000, "p99_ms": int(p99) / 1000,
            "failed": int(sock) + int(status), "requests": int(n)}


_ASYNC_LOAD = r"""
import asyncio, json, sys, time
import httpx
url, clients, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
bodies = json.load(sys.stdin)
lat, failed = [], 0
async def client(k):
    global failed
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        i, end = k, time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                r = await c.post(url + "/invocations", content=bodies[i % len(bodies)],
                                 headers={"Content-Type": "application/json"})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t0); failed += not ok; i += clients
async def main():
    t0 = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return time.perf_counter() - t0
wall = asyncio.run(main())
lat.sort()
print(json.dumps({"rps": len(lat) / wall, "p50_ms": 1000 * lat[len(lat) // 2],
                  "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                  "failed": failed, "requests": len(lat)}))
"""


def _async_load(url: str, bodies: list[str], clients: int, seconds: float) -> dict:
    out = subprocess.run([sys.executable, "-c", _ASYNC_LOAD, url, str(clients), str(seconds)],
                         input=json.dumps(bodies), capture_output=True, text=True,
                         timeout=seconds + 120, check=True)
    return json.loads(out.stdout)


def _start_mlflow(uri: str, tracking_uri: str, log: Path, workers: int):
    """``mlflow models serve -m URI --env-manager local -w WORKERS`` started by hand."""
    import requests

    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1",
         "-p", str(port), "-w", str(workers)], env=env, stdout=open(log, "wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
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


def run_scale(uri: str, tracking_uri: str, bodies: list[str], home: Path, rounds: int,
              seconds: float) -> dict:
    """Section (c): see the module docstring."""
    import shutil
    import signal as _signal

    import requests

    import mlkit

    use_wrk = shutil.which("wrk") is not None
    script = home / "bodies.lua"

    def load(url: str, clients: int) -> dict:
        if use_wrk:
            return _wrk(url, bodies, clients, seconds, script)
        return _async_load(url, bodies, clients, seconds)

    t0 = time.perf_counter()
    gw = mlkit.serve.start(uri, name="bench-gateway", replicas=2, max_batch_rows=64,
                           max_wait_ms=5, timeout=600)
    gateway_start = time.perf_counter() - t0
    procs = []
    try:
        one, one_url = _start_mlflow(uri, tracking_uri, home / "mlflow-w1.log", 1)
        procs.append(one)
        two, two_url = _start_mlflow(uri, tracking_uri, home / "mlflow-w2.log", 2)
        procs.append(two)
        replica_url = gw.replicas()[0]["url"]
        urls = {"mlkit_gateway_2_replicas": gw.url, "mlflow_1_worker": one_url,
                "mlflow_2_workers": two_url}
        # the answers are the same before anything is timed
        s = requests.Session()
        s.trust_env = False
        for b in bodies[:20]:
            answers = {s.post(f"{u}/invocations", data=b, timeout=60,
                              headers={"Content-Type": "application/json"}).text
                       for u in [*urls.values(), replica_url]}
            assert len(answers) == 1, answers
        for u in [*urls.values(), replica_url]:  # warm-up
            load(u, 8) if not use_wrk else _wrk(u, bodies, 8, 1, script)
        results: dict = {name: {c: [] for c in (1, 8, 32)} for name in urls}
        direct = []
        for _ in range(rounds):
            for clients in (1, 8, 32):
                for name, u in urls.items():
                    results[name][clients].append(load(u, clients))
            direct.append(load(replica_url, 1))
        # a replica SIGKILLed under 8 clients
        victim = gw.replicas()[1]["pid"]
        killer = threading.Timer(seconds / 3, os.kill, (victim, _signal.SIGKILL))
        killer.start()
        during_kill = load(gw.url, 8)
        killer.join()
    finally:
        for p in procs:
            os.killpg(p.pid, 15)
            p.wait(timeout=30)
        gw.stop()

    def med(runs: list[dict]) -> dict:
        return {k: round(statistics.median(r[k] for r in runs), 3)
                for k in ("rps", "p50_ms", "p99_ms", "failed")}

    figures = {name: {f"{c}_clients": med(v) for c, v in per.items()}
               for name, per in results.items()}
    g, b1, b2 = (figures["mlkit_gateway_2_replicas"], figures["mlflow_1_worker"],
                 figures["mlflow_2_workers"])
    ratios = {}
    for c in (1, 8, 32):
        k = f"{c}_clients"
        ratios[k] = {
            "rps_vs_mlflow_1_worker": round(g[k]["rps"] / b1[k]["rps"], 2),
            "rps_vs_mlflow_2_workers": round(g[k]["rps"] / b2[k]["rps"], 2),
            "p99_vs_mlflow_1_worker": round(g[k]["p99_ms"] / b1[k]["p99_ms"], 2),
        }
    d = med(direct)
    return {
        "load_generator": "wrk 4.1 (Lua, rotating bodies)" if use_wrk
        else "httpx.AsyncClient (asyncio, separate process)",
        "seconds_per_run": seconds, "rounds": rounds, "requests": "1 row each",
        "figures": figures, "ratios": ratios,
        "gateway_overhead_1_client": {
            "via_gateway_p50_ms": g["1_clients"]["p50_ms"], "replica_direct_p50_ms": d["p50_ms"],
            "overhead_p50_ms": round(g["1_clients"]["p50_ms"] - d["p50_ms"], 3),
            "replica_direct": d,
        },
        "replica_sigkilled_under_8_clients": {
            "requests": during_kill["requests"], "failed": during_kill["failed"],
            "rps": round(during_kill["rps"], 1),
        },
        "gateway_start_s_incl_2_replicas": round(gateway_start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sections", default="abc", help="which parts to run: a, b, c")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="(c): seconds of load per measurement")
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

    report: dict = {"bench": "serve"}
    if "c" in args.sections:
        report["scale"] = run_scale(uri, tracking_uri, bodies, home, args.rounds, args.seconds)
    if "a" not in args.sections and "b" not in args.sections:
        report["note"] = "loopback, shared 2-core machine; medians over rounds"
        print(json.dumps(report))
        return

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
    report.update({
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
    })
    print(json.dumps(report))


if __name__ == "__main__":
    main()
