"""The gateway with batching replicas, over real HTTP: batching equivalence under concurrency,
routing of several models on one port, health / readiness / Prometheus metrics, 413 / 415,
the malformed-request fuzz, and a replica SIGKILLed under load.

One gateway (2 replicas of ``demo@champion``, bodies limited to 1 MiB) is started per session and
shared; ``demo_flip`` (a second registered model, the opposite labels) is added to it as another
route. The unbatched reference is MLflow's own ``mlflow models serve`` (the ``servers["plain"]``
fixture) answering the very same bodies.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import random
import signal
import threading
from pathlib import Path

import pytest

from tests._wait import wait_for

MAX_BODY = 1024 * 1024
# Starting a gateway with its replicas takes a minute or two on a busy 2-core machine, and the
# first test to use the fixture pays for it: a ceiling above pytest's default of 300 s.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def flip(demo, helpers):
    """A second registered model, ``demo_flip`` version 1 (labels inverted), for routing."""
    with helpers.home_env(demo.home):
        model = helpers.fit_pipeline(demo.X, flip=True)
        version = helpers.log_model(model, demo.X, "demo_flip")
    return model, version


@pytest.fixture(scope="module")
def gw(demo, flip, helpers):
    import mlkit

    with helpers.home_env(demo.home):
        srv = mlkit.serve.start(demo.alias_uri, replicas=2, name="gw", max_batch_rows=64,
                                max_wait_ms=5, max_body_bytes=MAX_BODY, timeout=600)
        other = mlkit.serve.start(f"models:/demo_flip/{flip[1]}", replicas=1, name="gw-flip",
                                  gateway="gw", timeout=600)
    yield srv, other
    pids = [r["pid"] for r in srv.replicas() + other.replicas()]
    with helpers.home_env(demo.home):
        other.stop()
        assert srv.stop()
    import psutil

    assert not [p for p in pids if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def _session():
    import requests

    s = requests.Session()
    s.trust_env = False
    return s


def _body(X, rows) -> str:
    return json.dumps({"dataframe_split": X.iloc[rows].to_dict(orient="split")})


def test_concurrent_answers_are_the_unbatched_answers(gw, servers, demo):
    """32 clients at once: every answer is byte-for-byte what MLflow's server says alone."""
    srv, _ = gw
    rng = random.Random(3)
    bodies = [_body(demo.X, rng.sample(range(len(demo.X)), rng.randrange(1, 6)))
              for _ in range(320)]
    plain = _session()
    reference = []
    for b in bodies:
        r = plain.post(f"{servers['plain'].url}/invocations", data=b, timeout=60,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 200
        reference.append(r.text)
    answers: dict[int, tuple[int, str, dict]] = {}
    barrier = threading.Barrier(32)

    def client(k: int) -> None:
        s = _session()
        barrier.wait()
        for i in range(k, len(bodies), 32):
            r = s.post(f"{srv.url}/invocations", data=bodies[i], timeout=60,
                       headers={"Content-Type": "application/json"})
            answers[i] = (r.status_code, r.text, dict(r.headers))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == len(bodies)
    wrong = [i for i in range(len(bodies)) if answers[i][:2] != (200, reference[i])]
    assert not wrong, [(answers[i][:2], reference[i]) for i in wrong[:5]]
    together = [int(a[2]["x-mlkit-batch-requests"]) for a in answers.values()]
    replicas = collections.Counter(a[2]["x-mlkit-replica"] for a in answers.values())
    print(f"\nbatch sizes (requests per model call): max {max(together)}, "
          f"{sum(t > 1 for t in together)} of {len(together)} answers came from shared calls; "
          f"replicas {dict(replicas)}")
    assert max(together) > 1, "concurrent requests were never merged into one model call"
    assert set(replicas) == {"0", "1"}
    # a request that arrives alone is answered alone, with no wait for company
    s = _session()
    for rows in ([0], [1, 2]):
        r = s.post(f"{srv.url}/invocations", data=_body(demo.X, rows), timeout=60,
                   headers={"Content-Type": "application/json"})
        assert r.headers["x-mlkit-batch-requests"] == "1"
        assert r.json()["predictions"] == demo.model.predict(demo.X.iloc[rows]).tolist()


def test_several_models_and_versions_on_one_port(gw, demo, flip):
    srv, other = gw
    assert srv.gateway_url == other.gateway_url
    s = _session()
    rows = list(range(20))
    expected = demo.model.predict(demo.X.iloc[rows]).tolist()
    flipped = flip[0].predict(demo.X.iloc[rows]).tolist()
    assert expected != flipped
    base = srv.gateway_url
    for path, want in [("/models/demo/champion", expected), (f"/models/demo/{demo.version}",
                                                             expected),
                       ("/models/demo", expected), (f"/models/demo_flip/{flip[1]}", flipped),
                       ("/models/demo_flip", flipped)]:
        r = s.post(f"{base}{path}/invocations", data=_body(demo.X, rows), timeout=60,
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 200, (path, r.text)
        assert r.json()["predictions"] == want, path
    assert other.predict(demo.X.iloc[rows]).tolist() == flipped
    r = s.post(f"{base}/models/nope/invocations", data=_body(demo.X, [0]),
               headers={"Content-Type": "application/json"})
    assert r.status_code == 404 and "/models/demo/champion" in r.json()["message"]
    assert s.get(f"{srv.url}/invocations").status_code == 405
    listing = s.get(f"{base}/models").json()["routes"]
    assert {r["name"] for r in listing} == {"demo", "demo_flip"}


def test_health_ready_and_prometheus_metrics(gw, demo):
    from prometheus_client.parser import text_string_to_metric_families

    srv, _ = gw
    s = _session()
    assert s.get(f"{srv.gateway_url}/health").status_code == 200
    assert s.get(f"{srv.gateway_url}/ready").json() == {"ready": True}
    assert srv.ping() and srv.status()["ready"]
    for _ in range(5):
        srv.predict(demo.X.head(3))
    s.post(f"{srv.url}/invocations", data="{bad", headers={"Content-Type": "application/json"})
    text = s.get(srv.metrics_url).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    reqs = [x for x in families["mlkit_gateway_requests"].samples
            if x.name.endswith("_total") and x.labels["model"] == "demo"]
    assert {x.labels["version"] for x in reqs} == {demo.version}
    assert {x.labels["replica"] for x in reqs} >= {"0"} or {"1"}
    assert sum(x.value for x in reqs if x.labels["status"] == "200") >= 5
    errors = [x for x in families["mlkit_gateway_request_errors"].samples
              if x.labels.get("status") == "400" and x.name.endswith("_total")]
    assert errors and errors[0].value >= 1
    rows = [x for x in families["mlkit_gateway_batch_rows"].samples
            if x.name.endswith("_count") and x.labels["model"] == "demo"]
    assert sum(x.value for x in rows) >= 5
    assert "mlkit_gateway_queue_depth" in families
    assert any(x.name.endswith("_bucket") for x in
               families["mlkit_gateway_request_duration_seconds"].samples)


def test_size_limit_and_content_type_are_4xx(gw, demo):
    srv, _ = gw
    s = _session()
    big = json.dumps({"dataframe_records": demo.X.to_dict(orient="records") * 40}).encode()
    assert len(big) > MAX_BODY
    r = s.post(f"{srv.url}/invocations", data=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and str(MAX_BODY) in r.json()["message"]

    def chunks():  # no Content-Length: the limit holds while reading
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    r = s.post(f"{srv.url}/invocations", data=chunks(),
               headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    # MLflow's own server answers an empty POST without Content-Type with a 500
    r = s.post(f"{srv.url}/invocations", data=b"")
    assert r.status_code == 415 and "Content-Type" in r.json()["message"]
    assert r.headers["x-request-id"] == r.json()["request_id"]
    r = s.post(f"{srv.url}/invocations", data=_body(demo.X, [0, 1]),
               headers={"Content-Type": "application/json"})
    assert r.status_code == 200  # the same connection still serves


def _fuzz_module():
    spec = importlib.util.spec_from_file_location(
        "mlkit_serve_fuzz_cases", Path(__file__).with_name("test_fuzz.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_champion_challenger_sticky_split_and_shadow(gw, demo, flip):
    srv, other = gw
    s = _session()
    rows = list(range(10))
    want = {"demo/champion": demo.model.predict(demo.X.iloc[rows]).tolist(),
            f"demo_flip/{flip[1]}": flip[0].predict(demo.X.iloc[rows]).tolist()}

    def post(user=None):
        headers = {"Content-Type": "application/json"}
        if user is not None:
            headers["x-user-id"] = user
        r = s.post(f"{srv.url}/invocations", data=_body(demo.X, rows), headers=headers,
                   timeout=60)
        assert r.status_code == 200
        route = r.headers["x-mlkit-route"]
        assert r.json()["predictions"] == want[route]
        return route

    try:
        described = srv.split(other, weight=0.5, key="header:x-user-id")
        assert described == {"challenger": f"demo_flip/{flip[1]}", "weight": 0.5,
                             "shadow": False, "key": "header:x-user-id"}
        seen = {}
        for u in range(40):
            routes = {post(f"user-{u}") for _ in range(3)}
            assert len(routes) == 1, f"user-{u} saw {routes}"  # sticky
            seen[u] = routes.pop()
        share = sum(r.startswith("demo_flip") for r in seen.values()) / len(seen)
        print(f"\nchallenger share of 40 users at weight 0.5: {share:.2f}")
        assert 0.2 <= share <= 0.8
        srv.split(other, weight=0.0, key="header:x-user-id")
        assert {post(f"user-{u}") for u in range(10)} == {"demo/champion"}

        srv.split(other, shadow=True)
        log = srv.shadow_log
        before = len(log.read_text().splitlines()) if log.exists() else 0
        assert {post(f"user-{u}") for u in range(8)} == {"demo/champion"}  # never the shadow
        lines = wait_for(lambda: (ls := log.read_text().splitlines()) and
                         len(ls) >= before + 8 and ls, what="8 shadow lines")
        for line in lines[before:before + 8]:
            entry = json.loads(line)
            assert entry["champion"]["predictions"] == want["demo/champion"]
            assert entry["challenger"]["predictions"] == want[f"demo_flip/{flip[1]}"]
        from mlkit.exceptions import ServeError

        with pytest.raises(ServeError, match="is not another route of this gateway"):
            srv.split("nope/1")
        with pytest.raises(ServeError, match="weight must be"):
            srv.split(other, weight=2)
    finally:
        srv.split(None)
    assert post("user-1") == "demo/champion"


@pytest.mark.slow
def test_gateway_fuzz_never_5xx(gw, demo):
    """>= 1,000 malformed requests (the fuzz of test_fuzz.py, bodies up to 2 MiB against a 1 MiB
    limit) interleaved with valid ones: every malformed one a 4xx, every valid one right."""
    srv, _ = gw
    fuzz = _fuzz_module()
    expected = demo.model.predict(demo.X)
    counts, statuses, problems = fuzz._fuzz(srv, demo.X, expected, seed=11)
    malformed = sum(v for k, v in counts.items() if k != "valid")
    print(f"\ngateway fuzz: {malformed} malformed + {counts['valid']} valid requests; "
          f"by category {dict(sorted((k, v) for k, v in counts.items() if k != 'valid'))}; "
          f"statuses {dict(sorted(statuses.items()))}")
    assert not problems, "\n".join(map(str, problems[:20]))
    assert malformed >= 1000 and counts["valid"] >= 250
    assert statuses[413] >= counts["large_body"] + counts["deeply_nested_json"] > 0
    assert not [k for k in statuses if k >= 500]
    assert statuses[200] == counts["valid"]


def test_replica_sigkilled_under_load_costs_no_request(gw, demo):
    srv, _ = gw
    expected = demo.model.predict(demo.X)
    before = {r["replica"]: r for r in srv.replicas()}
    victim = before[0]
    stop = threading.Event()
    results = collections.Counter()
    failures = []

    def client(k: int) -> None:
        s = _session()
        rng = random.Random(k)
        while not stop.is_set():
            rows = rng.sample(range(len(demo.X)), rng.randrange(1, 5))
            try:
                r = s.post(f"{srv.url}/invocations", data=_body(demo.X, rows), timeout=60,
                           headers={"Content-Type": "application/json"})
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
        os.kill(victim["pid"], signal.SIGKILL)
        served_at_kill = sum(results.values())
        # the load goes on while replica 0 is dead: replica 1 answers everything, retries
        # included (the in-flight requests of the killed one)
        wait_for(lambda: sum(results.values()) >= served_at_kill + 100,
                 what="100 answers after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join()
    # the pool starts it again (without the load, so a busy 2-core machine does it in time)
    back = wait_for(lambda: [r for r in srv.replicas() if r["replica"] == 0 and r["healthy"]
                             and r["restarts"] == victim["restarts"] + 1],
                    timeout=300, what="replica 0 restarted and healthy")
    assert back[0]["pid"] != victim["pid"]
    r = _session().post(f"{srv.url}/invocations", data=_body(demo.X, [5]), timeout=60,
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    total = sum(results.values())
    print(f"\nSIGKILL of replica 0 under 8 clients: {total} answers ({served_at_kill} before the "
          f"kill), {len(failures)} failed; by replica {dict(results)}")
    assert not failures, failures[:5]
    metrics = _session().get(srv.metrics_url).text
    assert 'mlkit_gateway_replica_restarts_total{model="demo"' in metrics


@pytest.mark.parametrize("kwargs, pattern", [
    ({"replicas": 0}, "replicas must be an integer in 1..64"),
    ({"replicas": 2, "max_batch_rows": 0}, "max_batch_rows must be a positive integer"),
    ({"replicas": 2, "max_wait_ms": -1}, "max_wait_ms must be"),
    ({"replicas": 2, "max_body_bytes": 10}, "max_body_bytes must be"),
    ({"replicas": 2, "host": "192.0.2.10", "api_keys": False}, "must check API keys"),
    ({"replicas": 2, "metrics": True}, "with replicas=N the gateway always serves /metrics"),
    ({"replicas": 1, "gateway": "nope"}, "no gateway named 'nope' is running"),
])
def test_bad_gateway_arguments_refused_before_anything_starts(kwargs, pattern, demo,
                                                              at_serve_home):
    import mlkit
    from mlkit.exceptions import ServeError

    before = mlkit.serve.list_servers()
    with pytest.raises(ServeError, match=pattern):
        mlkit.serve.start(demo.alias_uri, **kwargs)
    assert [s.name for s in mlkit.serve.list_servers()] == [s.name for s in before]
