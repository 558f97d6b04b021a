"""Replicas on the Dask cluster (``serve.start(model, on="cluster")``), over real HTTP with a real
2-worker LocalCluster (worker processes): one replica per worker, bound to the worker's host and
living in the worker's process tree; answers identical to a local replica's; each replica refuses
callers without the gateway's secret; a replica SIGKILLed under load costs no request; stop
leaves no process on any worker; a bad ``on=`` is refused before anything starts.
"""

from __future__ import annotations

import collections
import json
import random
import signal
import threading

import pytest

from tests._wait import wait_for

pytestmark = pytest.mark.timeout(900)


def _session():
    import requests

    s = requests.Session()
    s.trust_env = False
    return s


def _body(X, rows) -> str:
    return json.dumps({"dataframe_split": X.iloc[rows].to_dict(orient="split")})


def _post(s, url, body):
    return s.post(f"{url}/invocations", data=body, timeout=60,
                  headers={"Content-Type": "application/json"})


def _replica_pids(client) -> dict[str, list[int]]:
    """Per worker: the pids of replica processes that are children of that worker process."""
    def find():
        import os

        import psutil

        return [p.pid for p in psutil.Process(os.getpid()).children(recursive=True)
                if "mlkit.serve._replica:create_app" in " ".join(p.cmdline())
                and p.status() != psutil.STATUS_ZOMBIE]

    return client.run(find)


def test_bad_on_value_and_no_cluster_refused_before_anything_starts(demo, at_serve_home):
    import mlkit
    from mlkit.exceptions import ServeError

    before = [s.name for s in mlkit.serve.list_servers()]
    with pytest.raises(ServeError, match=r"on must be 'local' .* or 'cluster' .*got 'clutser'"):
        mlkit.serve.start(demo.alias_uri, replicas=2, on="clutser")
    mlkit.cluster.down()
    with pytest.raises(ServeError, match="on='cluster' needs a running Dask cluster"):
        mlkit.serve.start(demo.alias_uri, on="cluster")
    assert [s.name for s in mlkit.serve.list_servers()] == before


@pytest.fixture(scope="module")
def cgw(demo, helpers):
    """A gateway with ``demo@champion`` on the cluster (one replica per worker) and, on the same
    port, the same model served by a local replica (``/models/local-ref/default``)."""
    import mlkit
    from tests.conftest import CLUSTER_SPEC

    cluster = mlkit.cluster.up(**CLUSTER_SPEC)
    with helpers.home_env(demo.home):
        srv = mlkit.serve.start(demo.alias_uri, on="cluster", name="gw-cluster",
                                max_batch_rows=64, timeout=600)
        local = mlkit.serve.start(demo.local_path, replicas=1, gateway="gw-cluster",
                                  name="local-ref", timeout=600)
    yield srv, local, cluster
    with helpers.home_env(demo.home):
        local.stop()
        srv.stop()


def test_one_replica_per_worker_in_the_worker_tree(cgw):
    import psutil

    srv, _, cluster = cgw
    client = cluster.client
    reps = srv.replicas()
    workers = client.scheduler_info(n_workers=-1)["workers"]
    assert len(reps) == len(workers) == 2
    assert sorted(r["worker"] for r in reps) == sorted(workers)
    worker_pids = client.run(lambda: __import__("os").getpid())
    for r in reps:
        assert r["healthy"], r
        # bound to the worker's own host (from its address), in that worker process's tree
        host = r["worker"].split("://")[1].rsplit(":", 1)[0]
        assert r["host"] == host and r["url"].startswith(f"http://{host}:")
        assert psutil.Process(r["pid"]).parent().pid == worker_pids[r["worker"]]
    on_workers = _replica_pids(client)
    assert {w: sorted(p) for w, p in on_workers.items()} == {
        r["worker"]: [r["pid"]] for r in reps}


def test_answers_identical_to_a_local_replica(cgw, demo):
    srv, local, _ = cgw
    rng = random.Random(5)
    s = _session()
    served = collections.Counter()
    for _ in range(40):
        body = _body(demo.X, rng.sample(range(len(demo.X)), rng.randrange(1, 8)))
        a, b = _post(s, srv.url, body), _post(s, local.url, body)
        assert (a.status_code, a.text) == (b.status_code, b.text) and a.status_code == 200
        served[a.headers["x-mlkit-replica"]] += 1
    assert set(served) == {"0", "1"}, served  # both workers' replicas answered
    bad = json.dumps({"dataframe_split": {"columns": ["nope"], "data": [[1]]}})
    a, b = _post(s, srv.url, bad), _post(s, local.url, bad)
    assert a.status_code == b.status_code == 400
    assert a.json()["message"] == b.json()["message"]


def test_replicas_refuse_callers_without_the_gateway_secret(cgw, demo):
    srv, _, _ = cgw
    s = _session()
    for r in srv.replicas():
        assert s.get(f"{r['url']}/ping", timeout=10).status_code == 401
        resp = _post(s, r["url"], _body(demo.X, [0]))
        assert resp.status_code == 401 and "gateway" in resp.json()["message"]
        resp = s.post(f"{r['url']}/invocations", data=_body(demo.X, [0]), timeout=10,
                      headers={"Content-Type": "application/json",
                               "x-mlkit-replica-token": "guess"})
        assert resp.status_code == 403
    assert _post(s, srv.url, _body(demo.X, [0])).status_code == 200  # the gateway gets in


def test_replica_sigkilled_under_load_costs_no_request(cgw, demo):
    srv, _, cluster = cgw
    expected = demo.model.predict(demo.X)
    victim = next(r for r in srv.replicas() if r["replica"] == 0)
    stop = threading.Event()
    results = collections.Counter()
    failures = []

    def client(k: int) -> None:
        s = _session()
        rng = random.Random(k)
        while not stop.is_set():
            rows = rng.sample(range(len(demo.X)), rng.randrange(1, 5))
            try:
                r = _post(s, srv.url, _body(demo.X, rows))
            except Exception as exc:  # noqa: BLE001 - a dropped request is a failure
                failures.append(repr(exc))
                continue
            if r.status_code != 200 or r.json()["predictions"] != expected[rows].tolist():
                failures.append((r.status_code, r.text[:200]))
            else:
                results[r.headers["x-mlkit-replica"]] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sum(results.values()) >= 50, what="50 answers before the kill")
        # SIGKILL on the worker that runs it
        cluster.client.run(__import__("os").kill, victim["pid"], signal.SIGKILL,
                           workers=[victim["worker"]])
        served_at_kill = sum(results.values())
        wait_for(lambda: sum(results.values()) >= served_at_kill + 100,
                 what="100 answers after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join()
    back = wait_for(lambda: [r for r in srv.replicas() if r["replica"] == 0 and r["healthy"]
                             and r["restarts"] == victim["restarts"] + 1],
                    timeout=300, what="replica 0 restarted on its worker and healthy")
    assert back[0]["pid"] != victim["pid"] and back[0]["worker"] == victim["worker"]
    total = sum(results.values())
    print(f"\nSIGKILL of cluster replica 0 under 8 clients: {total} answers ({served_at_kill} "
          f"before the kill), {len(failures)} failed; by replica {dict(results)}")
    assert not failures, failures[:5]
    assert _post(_session(), srv.url, _body(demo.X, [5])).status_code == 200


def test_stop_leaves_nothing_on_the_workers(demo, helpers):
    """Its own gateway (the module's stays up for the other tests): stop, then look on each
    worker for the replica pids and for any replica process in the worker's tree."""
    import mlkit
    from tests.conftest import CLUSTER_SPEC

    cluster = mlkit.cluster.up(**CLUSTER_SPEC)
    client = cluster.client
    before = _replica_pids(client)
    with helpers.home_env(demo.home):
        srv = mlkit.serve.start(demo.version_uri, on="cluster", replicas=3, name="gw-stop",
                                timeout=600)
        reps = srv.replicas()
        assert len(reps) == 3 and len({r["worker"] for r in reps}) == 2  # round robin
        pids = {r["worker"]: [] for r in reps}
        for r in reps:
            pids[r["worker"]].append(r["pid"])
        assert srv.predict(demo.X.head(4)).tolist() == demo.model.predict(demo.X.head(4)).tolist()
        assert srv.stop()
        assert "gw-stop" not in [s.name for s in mlkit.serve.list_servers()]

    def alive(pid_list):
        import psutil

        return [p for p in pid_list if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    for worker, plist in pids.items():
        assert client.run(alive, plist, workers=[worker])[worker] == []
    assert _replica_pids(client) == before


def test_a_cluster_route_scales_to_zero_and_the_next_request_wakes_it(cgw, demo, helpers):
    """Serverless on the cluster: idle replicas leave their workers; one request starts them
    again on the workers and is answered; the cold start is exported."""
    import mlkit

    srv, _, cluster = cgw
    client = cluster.client
    with helpers.home_env(demo.home):
        zero = mlkit.serve.start(demo.local_path, on="cluster", gateway="gw-cluster",
                                 name="zero", scale_to_zero="2s", timeout=600)
    try:
        first = {r["worker"]: r["pid"] for r in zero.replicas()}
        assert len(first) == 2 and all(first.values()), first
        wait_for(lambda: all(r["scaled_to_zero"] for r in zero.replicas()), timeout=120,
                 what="the idle cluster route scaled to zero")

        def route_pids():  # this route's replicas only (the module's route stays up)
            return {w: [p for p in pids if p in first.values()]
                    for w, pids in _replica_pids(client).items()}

        wait_for(lambda: not any(route_pids().values()), timeout=120,
                 what="the idle replicas gone from their workers")
        s = _session()
        resp = s.post(f"{zero.url}/invocations", data=_body(demo.X, [0, 1, 2]), timeout=300,
                      headers={"Content-Type": "application/json"})  # pays the cold start
        assert resp.status_code == 200, resp.text
        assert resp.json()["predictions"] == demo.model.predict(demo.X.head(3)).tolist()
        again = {r["worker"]: r["pid"] for r in zero.replicas() if r["healthy"]}
        assert again and not set(again.values()) & set(first.values()), (first, again)
        assert all(w in first for w in again)  # woken on the cluster's workers, not here
        metrics = s.get(srv.metrics_url).text
        counts = [line for line in metrics.splitlines()
                  if line.startswith("mlkit_gateway_cold_start_seconds_count")
                  and 'model="zero"' in line]
        assert counts and float(counts[0].split()[-1]) == 1.0, counts
        # the module's route never scaled: it still answers from its own replicas
        assert _post(s, srv.url, _body(demo.X, [4])).status_code == 200
    finally:
        with helpers.home_env(demo.home):
            zero.stop()


def test_promoting_a_cluster_routes_alias_moves_it_and_stops_the_old_replicas(demo, helpers):
    """``mlkit.track.promote`` on a route served on the cluster: the gateway starts the new
    version's replicas on the workers, swaps the route, and stops the old ones there."""
    import mlkit
    from tests.conftest import CLUSTER_SPEC

    cluster = mlkit.cluster.up(**CLUSTER_SPEC)
    client = cluster.client
    before = {w: set(p) for w, p in _replica_pids(client).items()}  # other gateways' replicas
    with helpers.home_env(demo.home):
        v1 = helpers.log_model(demo.model, demo.X, "cpromo")
        flipped = helpers.fit_pipeline(demo.X, flip=True)
        v2 = helpers.log_model(flipped, demo.X, "cpromo")
        mlkit.track.promote("cpromo", v1)
        srv = mlkit.serve.start("models:/cpromo@champion", on="cluster", name="gw-cpromo",
                                timeout=600)
    try:
        s = _session()
        rows = list(range(20))
        r = _post(s, srv.url, _body(demo.X, rows))
        assert r.headers["x-mlkit-model-version"] == v1
        assert r.json()["predictions"] == demo.model.predict(demo.X.iloc[rows]).tolist()
        old = {x["pid"] for x in srv.replicas()}
        assert len(old) == 2
        with helpers.home_env(demo.home):
            mlkit.track.promote("cpromo", v2)
            srv.refresh()  # at once (the gateway would also notice within its poll)
        answer = wait_for(lambda: (lambda a: a if a.headers.get("x-mlkit-model-version") == v2
                                   else None)(_post(s, srv.url, _body(demo.X, rows))),
                          timeout=600, what="an answer from version 2")
        assert answer.json()["predictions"] == flipped.predict(demo.X.iloc[rows]).tolist()
        reps = srv.replicas()
        new = {x["pid"] for x in reps}
        assert len(reps) == 2 and all(x["healthy"] for x in reps) and not new & old, reps
        assert sorted(x["worker"] for x in reps) == sorted(before)  # one per worker again
        # on the workers: the new version's replicas, and none of the old version's
        wait_for(lambda: {w: set(p) - before.get(w, set())
                          for w, p in _replica_pids(client).items()}
                 == {x["worker"]: {x["pid"]} for x in reps},
                 timeout=120, what="only the new version's replicas on the workers")
    finally:
        with helpers.home_env(demo.home):
            srv.stop()
