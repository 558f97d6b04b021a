"""Serving replicas on worker hosts that share nothing with the client but the network.

``serve.start(model, on="cluster")`` from the client host: the gateway runs on the client (on
127.0.0.1), one replica runs on each worker host, bound to that host's own address on the bridge,
and guarded by the gateway's secret. The model is logged in the client's own store, which the
workers cannot read: the gateway ships it to them.
"""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.timeout(900)

WORKER_ADDRS = {"192.0.2.11", "192.0.2.12"}


@pytest.fixture(scope="module")
def served(session, scheduler):
    session.ok(
        "import json, mlflow, mlkit, pandas as pd, requests\n"
        "mlkit.config.set_store(None)\n"
        f"cluster = mlkit.cluster.connect({scheduler!r}, replace=True)\n"
        "if 'xgb_train' not in globals():\n"
        "    p = mlkit.data.synthetic('s3://mlkit/data/xgb', rows=4_000, features=5,"
        " partitions=2, progress=False)\n"
        "    xgb_train = mlkit.data.read(p)\n"
        "r = mlkit.train.xgboost(xgb_train, 'target', params={'nthread': 1}, rounds=5,"
        " track=False, progress=False)\n"
        "uri = r.log_model('served')\n"
        "X = xgb_train.drop(columns='target').head(40)\n"
        "expected = mlflow.pyfunc.load_model(uri).predict(X)\n"
        "srv = mlkit.serve.start(uri, on='cluster', name='remote-gw', timeout=600)\n"
        "http = requests.Session(); http.trust_env = False\n"
        "def post(url, rows, **headers):\n"
        "    body = json.dumps({'dataframe_split': X.iloc[rows].to_dict(orient='split')})\n"
        "    return http.post(url + '/invocations', data=body, timeout=60,"
        " headers={'Content-Type': 'application/json', **headers})\n",
        timeout=900)
    yield session
    session.ok("srv.stop() if srv.alive() else None", timeout=120)


def test_one_replica_per_worker_host_bound_to_its_address(served):
    reps = served.ok("reps = srv.replicas()", "reps")
    assert len(reps) == 2, reps
    assert {r["host"] for r in reps} == WORKER_ADDRS, reps
    for r in reps:
        assert r["healthy"], r
        assert r["url"].startswith(f"http://{r['host']}:"), r
    gateway = served.ok("", "srv.url")
    assert gateway.startswith("http://127.0.0.1:"), gateway  # the front door stays local


def test_the_gateway_answers_what_the_model_predicts_from_both_hosts(served):
    got = served.ok(
        "answers, replicas = [], set()\n"
        "for i in range(30):\n"
        "    resp = post(srv.url, [i % 40, (i + 7) % 40])\n"
        "    answers.append((resp.status_code, resp.json()['predictions']))\n"
        "    replicas.add(resp.headers['x-mlkit-replica'])\n"
        "want = [[float(expected[i % 40]), float(expected[(i + 7) % 40])] for i in range(30)]",
        "[sorted({a[0] for a in answers}), [[float(v) for v in a[1]] for a in answers], want,"
        " sorted(replicas)]")
    statuses, answers, want, replicas = got
    assert statuses == [200]
    assert sum(answers, []) == pytest.approx(sum(want, []), rel=1e-6)
    assert replicas == ["0", "1"]  # both hosts' replicas answered


def test_a_replica_on_another_host_refuses_callers_without_the_gateways_secret(served, net):
    urls = served.ok("", "[r['url'] for r in srv.replicas()]")
    probe = ("import sys, urllib.request, urllib.error\n"
             "try:\n"
             "    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)\n"
             "except urllib.error.HTTPError as e:\n"
             "    print(e.code)\n")
    for url in urls:  # from the scheduler host: on the bridge, but not the gateway
        code = net["scheduler"].run([sys.executable, "-c", probe, f"{url}/ping"]).stdout.strip()
        assert code == "401", (url, code)
    got = served.ok("", "[post(u, [0], **{'x-mlkit-replica-token': 'guess'}).status_code"
                        " for u in [r['url'] for r in srv.replicas()]]")
    assert got == [403, 403]


def test_stop_leaves_no_replica_on_any_worker_host(served):
    left = served.ok(
        "def replicas_here():\n"
        "    import os, psutil\n"
        "    return [p.pid for p in psutil.Process(os.getpid()).children(recursive=True)"
        " if 'mlkit.serve._replica:create_app' in ' '.join(p.cmdline())"
        " and p.status() != psutil.STATUS_ZOMBIE]\n"
        "before = cluster.client.run(replicas_here)\n"
        "srv.stop()\n"
        "import time\n"
        "deadline = time.monotonic() + 60\n"
        "while any(cluster.client.run(replicas_here).values()) and time.monotonic() < deadline:\n"
        "    time.sleep(0.2)\n"
        "after = cluster.client.run(replicas_here)",
        "[sorted(len(v) for v in before.values()), sorted(len(v) for v in after.values())]",
        timeout=180)
    assert left == [[1, 1], [0, 0]], left
