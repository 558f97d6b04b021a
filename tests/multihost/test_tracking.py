"""Tracking for workers on other hosts: mlkit's tracking server, reached from every host.

``connect(..., tracking="server")`` starts ``mlflow server`` on the client host, bound to the
client's address on the route to the scheduler (192.0.2.13), with basic auth and
``--serve-artifacts``; the workers get its address and credentials through a WorkerPlugin.
(Without a server, batch scoring of a client-only model is refused: test_train.py.)
"""

from __future__ import annotations

import sys

import pytest
from _torch_fns import TORCH_FNS

CLIENT = "192.0.2.13"
START = 900  # seconds: MLflow's server imports slowly on a loaded 2-core machine


@pytest.fixture(scope="module")
def tracked(session, scheduler):
    session.ok(
        "import os, mlflow, mlkit\nmlkit.config.set_store(None)\n"
        f"cluster = mlkit.cluster.connect({scheduler!r}, replace=True, tracking='server')\n"
        "srv = mlkit.track.tracking_server()\n"
        "if 'xgb_train' not in globals():\n"
        "    p = mlkit.data.synthetic('s3://mlkit/data/xgb', rows=4_000, features=5,"
        " partitions=2, progress=False)\n"
        "    xgb_train = mlkit.data.read(p)\n", timeout=START)
    yield session
    session.ok("stopped = mlkit.track.stop_tracking()", timeout=120)


def test_connect_starts_a_guarded_server_on_the_address_the_workers_reach(tracked, net):
    got = tracked.ok(
        "pf = cluster.preflight\ntext = str(mlkit.cluster.status())",
        "[srv.url, srv.auth, srv._entry['allowed_hosts'], mlkit.track.tracking_uri(),"
        " pf.tracking_shared, pf.missing, text]")
    url, auth, allowed, uri, shared, missing, text = got
    assert url.startswith(f"http://{CLIENT}:") and auth is True
    port = url.rsplit(":", 1)[1]
    assert allowed == [CLIENT, f"{CLIENT}:{port}"]
    assert uri == url
    assert shared is True and not any("tracking server" in m for m in missing), missing
    assert f"tracking (runs, models, artifacts): {url} (mlkit's tracking server" in text
    # From a worker host: health answers, the REST API wants the credentials.
    probe = ("import sys, urllib.request, urllib.error\n"
             "try:\n"
             "    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)\n"
             "except urllib.error.HTTPError as e:\n"
             "    print(e.code)\n")
    w1 = net["worker1"]
    health = w1.run([sys.executable, "-c", probe, f"{url}/health"]).stdout.strip()
    api = w1.run([sys.executable, "-c", probe,
                  f"{url}/api/2.0/mlflow/experiments/search?max_results=1"]).stdout.strip()
    assert (health, api) == ("200", "401")
    # The password is on the client only, readable by its owner alone.
    mode = net["client"].run(["stat", "-c", "%a", "/tmp/work/.mlkit/tracking/credentials.json"])
    assert mode.stdout.strip() == "600"
    for h in ("worker1", "worker2"):
        assert net[h].read_file("/tmp/work/.mlkit/tracking/credentials.json") is None


def test_a_run_opened_in_a_task_on_a_worker_lands_in_the_clients_store(tracked):
    got = tracked.ok(
        "def on_worker(tag):\n"
        "    import socket, mlflow, mlkit\n"
        "    with mlkit.track.run('on-' + tag) as r:\n"
        "        mlflow.log_metric('loss', 0.5)\n"
        "        mlflow.log_text(socket.gethostname(), 'host.txt')\n"
        "    return r.info.run_id\n"
        "workers = sorted(cluster.client.scheduler_info()['workers'])\n"
        "ids = [cluster.client.submit(on_worker, str(i), workers=[w], pure=False).result()"
        " for i, w in enumerate(workers)]\n"
        "runs = [mlflow.get_run(i) for i in ids]\n"
        "hosts = sorted(mlflow.artifacts.load_text(r.info.artifact_uri + '/host.txt')"
        " for r in runs)",
        "[[r.info.status for r in runs], [r.data.metrics for r in runs], hosts,"
        " [r.info.artifact_uri.split(':', 1)[0] for r in runs]]", timeout=300)
    statuses, metrics, hosts, schemes = got
    assert statuses == ["FINISHED", "FINISHED"]
    assert metrics == [{"loss": 0.5}, {"loss": 0.5}]
    assert hosts == ["worker1", "worker2"]  # written on the workers, read back on the client
    assert schemes == ["mlflow-artifacts", "mlflow-artifacts"]


def test_a_model_logged_on_the_client_is_scored_on_the_workers(tracked, net):
    got = tracked.ok(
        "import numpy as np\n"
        "r = mlkit.train.xgboost(xgb_train, 'target', params={'nthread': 1}, rounds=3,"
        " track=False, progress=False)\n"
        "r.log_model('m', registered_model_name='remote-scored')\n"
        "X = xgb_train.drop(columns='target')\n"
        "preds = mlkit.serve.batch_predict(X, 'models:/remote-scored/1').compute()\n"
        "here = mlflow.pyfunc.load_model('models:/remote-scored/1').predict(X.compute())\n"
        "loc = mlkit.serve._models.resolve('models:/remote-scored/1',"
        " mlkit.track.tracking_uri()).location\n"
        "def loads(loc):\n"
        "    from mlkit.serve import _batch\n"
        "    return _batch.LOADS.get(loc, 0)\n"
        "per_worker = cluster.client.run(loads, loc)",
        "[len(preds), float(np.abs(np.asarray(preds) - np.asarray(here).ravel()).max()),"
        " sorted(per_worker.values()), loc]", timeout=300)
    n, diff, loads, loc = got
    assert n == 4_000 and diff < 1e-6
    # The workers downloaded it from the server (once per worker that scored a partition).
    assert loc.startswith("mlflow-artifacts:/") and max(loads) == 1 and sum(loads) >= 1, loads
    # The artifacts live in the server's store on the client host, and nowhere else.
    found = net["client"].run(["find", "/tmp/work/.mlkit/tracking/artifacts", "-name",
                               "MLmodel"]).stdout.split()
    assert found, "no MLmodel in the server's artifact store"
    for h in ("worker1", "worker2"):
        assert net[h].read_file(found[0]) is None, h


def test_xgboost_checkpoints_go_to_the_servers_artifact_store_without_a_shared_store(
        tracked, net):
    got = tracked.ok(
        "params = {'objective': 'binary:logistic', 'nthread': 1}\n"
        "r1 = mlkit.train.xgboost(xgb_train, 'target', params=params, rounds=10,"
        " checkpoint_every=5, name='ck-tracked', track=False, progress=False)\n"
        "r2 = mlkit.train.xgboost(xgb_train, 'target', params=params, rounds=15,"
        " checkpoint_every=5, name='ck-tracked', resume=True, track=False, progress=False)",
        "[mlkit.config.store(), str(r1.checkpoint_dir), r2.booster.num_boosted_rounds(),"
        " len(r2.history)]", timeout=300)
    store, where, rounds, history = got
    assert store is None
    assert where.startswith(f"mlflow-artifacts://{CLIENT}:") and where.endswith(
        "/mlkit/checkpoints/xgboost/ck-tracked")
    assert rounds == 15 and history == 15  # resumed from round 10, read back from the server
    files = net["client"].run(
        ["ls", "/tmp/work/.mlkit/tracking/artifacts/mlkit/checkpoints/xgboost/ck-tracked"]).stdout
    assert "round-000015.ubj" in files and "round-000010.ubj" in files, files
    for h in ("worker1", "worker2"):
        assert "checkpoints" not in net[h].run(["ls", "/tmp/work/.mlkit"]).stdout, h


def test_torch_checkpoints_go_to_the_servers_artifact_store_without_a_shared_store(
        tracked, net):
    got = tracked.ok(
        TORCH_FNS + "part = mlkit.train.torch(train_ddp, epochs=2, name='ddp-tracked', **ddp)\n"
        "resumed = mlkit.train.torch(train_ddp, epochs=3, name='ddp-tracked', resume=True,"
        " **ddp)",
        "[mlkit.config.store(), sorted(part.values), part.checkpoint, resumed.checkpoint,"
        " resumed.history['epoch'].tolist()]", timeout=300)
    store, hosts, first, last, epochs = got
    assert store is None and hosts == ["worker1", "worker2"]
    assert first.startswith(f"mlflow-artifacts://{CLIENT}:") and first.endswith(
        "/mlkit/checkpoints/torch/ddp-tracked/ckpt-000001.pt")
    assert last == first.replace("ckpt-000001", "ckpt-000002")
    assert epochs == [2.0]  # resumed after epoch 1, read back from the server
    folder = "/tmp/work/.mlkit/tracking/artifacts/mlkit/checkpoints/torch/ddp-tracked"
    files = net["client"].run(["ls", folder]).stdout.split()
    assert files == ["ckpt-000001.pt", "ckpt-000002.pt"], files
    for h in ("worker1", "worker2"):
        assert "checkpoints" not in net[h].run(["ls", "/tmp/work/.mlkit"]).stdout, h


def test_data_in_the_home_goes_to_the_servers_artifact_store_without_a_shared_store(
        tracked, net):
    got = tracked.ok(
        "home = mlkit.config.home_path()\n"
        "p = mlkit.data.synthetic(home / 'data' / 'syn-tracked', rows=3000, features=4,"
        " partitions=3, progress=False)\n"
        "df = mlkit.data.read(home / 'data' / 'syn-tracked')\n"
        "n = len(df)\n"
        "out = mlkit.data.write(df[df.f0 > 0], home / 'data' / 'syn-pos', progress=False)\n"
        "m = len(mlkit.data.read(out))\n"
        "text = str(mlkit.cluster.status())",
        "[mlkit.config.store(), p, n, out, m, text]", timeout=300)
    store, path, n, out, m, text = got
    prefix = f"mlflow-artifacts://{CLIENT}:"
    assert store is None
    assert path.startswith(prefix) and path.endswith("/mlkit/data/syn-tracked"), path
    assert out.startswith(prefix) and out.endswith("/mlkit/data/syn-pos"), out
    assert n == 3000 and 0 < m < n, (n, m)  # written and read back by the remote workers
    assert "data, checkpoints, logs, job outputs: " + prefix in text, text
    folder = "/tmp/work/.mlkit/tracking/artifacts/mlkit/data"
    parts = net["client"].run(["ls", f"{folder}/syn-tracked"]).stdout.split()
    assert sum(f.endswith(".parquet") for f in parts) == 3, parts
    # the staging folders are gone, and the workers' own disks hold none of it
    assert ".tmp-" not in net["client"].run(["ls", "-a", folder]).stdout
    for h in ("worker1", "worker2"):
        assert "data" not in net[h].run(["ls", "/tmp/work/.mlkit"]).stdout.split(), h


def test_stopping_the_server_leaves_no_process_and_puts_everyone_back(tracked, net):
    got = tracked.ok(
        "pid = srv.pid\nstopped = mlkit.track.stop_tracking()\n"
        "import psutil\n"
        "worker_uris = cluster.client.run(lambda: os.environ.get('MLFLOW_TRACKING_URI'))",
        "[stopped, psutil.pid_exists(pid), mlkit.track.tracking_uri(), srv.url,"
        " sorted(map(str, worker_uris.values())), str(cluster.preflight.missing)]",
        timeout=180)
    stopped, exists, uri, url, worker_uris, missing = got
    assert stopped is True and exists is False
    assert uri.startswith("sqlite:///") and url not in worker_uris
    assert "a tracking server every worker reaches" in missing  # reported missing again
    # Started again (as the next test module may need it gone, the fixture stops it at the end).
    again = tracked.ok("srv = mlkit.track.serve_tracking()",
                       "[srv.url.startswith('http://192.0.2.13:'), mlkit.track.tracking_uri()"
                       " == srv.url]", timeout=START)
    assert again == [True, True]
