"""Training on workers that do not share the client's disk: checkpoints in the shared store."""

from __future__ import annotations

import pytest


@pytest.fixture
def remote(session, scheduler):
    session.ok(f"import os, mlkit\nmlkit.config.set_store(None)\n"
               f"cluster = mlkit.cluster.connect({scheduler!r})\n"
               "if 'xgb_train' not in globals():\n"
               "    p = mlkit.data.synthetic('s3://mlkit/data/xgb', rows=4_000, features=5,"
               " partitions=2, progress=False)\n"
               "    xgb_train = mlkit.data.read(p)\n")
    yield session
    session.ok("mlkit.config.set_store(None)")


def test_xgboost_checkpoints_need_a_store_and_go_there_and_resume_from_it(remote, net):
    out = remote.run("mlkit.train.xgboost(xgb_train, 'target', rounds=10, checkpoint_every=5,"
                     " name='ck', track=False, progress=False)")
    assert out["type"] == "ClientOnlyPathError", out
    assert "checkpoint folder '/tmp/work/.mlkit/checkpoints/xgboost/ck'" in out["message"]
    assert "MLKIT_STORE" in out["message"]

    got = remote.ok(
        "mlkit.config.set_store('s3://mlkit/store')\n"
        "params = {'objective': 'binary:logistic', 'nthread': 1}\n"
        "r1 = mlkit.train.xgboost(xgb_train, 'target', params=params, rounds=10,"
        " checkpoint_every=5, name='ck', track=False, progress=False)\n"
        "r2 = mlkit.train.xgboost(xgb_train, 'target', params=params, rounds=15,"
        " checkpoint_every=5, name='ck', resume=True, track=False, progress=False)",
        "[str(r1.checkpoint_dir), r1.booster.num_boosted_rounds(),"
        " r2.booster.num_boosted_rounds(), len(r2.history)]")
    assert got[0] == "s3://mlkit/store/checkpoints/xgboost/ck"
    assert got[1] == 10 and got[2] == 15 and got[3] == 15  # history carried over the resume
    # The checkpoints are in the object store (seen from another host), none on a host's disk.
    files = net["scheduler"].python(
        "import s3fs; print(sorted(f.rsplit('/', 1)[-1] for f in "
        "s3fs.S3FileSystem().ls('mlkit/store/checkpoints/xgboost/ck')))").stdout
    assert "round-000015.ubj" in files and "round-000010.ubj" in files, files
    for h in ("client", "worker1", "worker2"):
        assert "checkpoints" not in net[h].run(["ls", "/tmp/work/.mlkit"]).stdout, h


def test_batch_scoring_refuses_a_model_store_only_the_client_has(remote):
    out = remote.run(
        "r = mlkit.train.xgboost(xgb_train, 'target', params={'nthread': 1}, rounds=3,"
        " track=False, progress=False)\n"
        "uri = r.log_model('m')\n"
        "mlkit.serve.batch_predict(xgb_train.drop(columns='target'), uri)")
    assert out["type"] == "ClientOnlyPathError", out
    assert "the model's artifacts 'file:///tmp/work/.mlkit/" in out["message"], out["message"]
    assert "--serve-artifacts" in out["message"]
