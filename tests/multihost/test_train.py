"""Training on workers that do not share the client's disk: checkpoints in the shared store."""

from __future__ import annotations

import pytest
from _torch_fns import TORCH_FNS


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




def test_torch_ddp_on_two_hosts_checkpoints_in_the_store_and_resume_from_them(remote, net):
    got = remote.ok(
        TORCH_FNS + "import fsspec\nmlkit.config.set_store('s3://mlkit/store')\n"
        "part = mlkit.train.torch(train_ddp, epochs=3, name='ddp', **ddp)\n"
        "resumed = mlkit.train.torch(train_ddp, epochs=5, name='ddp', resume=True, **ddp)\n"
        "full = mlkit.train.torch(train_ddp, epochs=5, name='ddp-full', **ddp)\n"
        "with fsspec.open(resumed.checkpoint, 'rb') as f:\n"
        "    on_client = torch.load(f, weights_only=True)\n",
        "[sorted(part.values), str(part.checkpoint_dir), part.checkpoint, resumed.checkpoint,"
        " type(resumed.checkpoint).__name__, on_client['step'],"
        " [part.history['epoch'].tolist(), part.history['loss'].tolist()],"
        " [resumed.history['epoch'].tolist(), resumed.history['loss'].tolist()],"
        " full.history['loss'].tolist()]", timeout=600)
    hosts, folder, first, last, kind, step, (e1, l1), (e2, l2), lfull = got
    assert hosts == ["worker1", "worker2"]  # one rank on each host
    assert folder == "s3://mlkit/store/checkpoints/torch/ddp"
    assert first == f"{folder}/ckpt-000002.pt" and last == f"{folder}/ckpt-000004.pt"
    assert kind == "str" and step == 4  # a URL, which the client reads from the store
    # The resumed job started after the stored epoch 2 and went on exactly as one uninterrupted
    # job of 5 epochs did: the checkpoint (weights and the optimizer's momentum) came back whole.
    assert e1 == [0.0, 1.0, 2.0] and e2 == [3.0, 4.0]
    assert len(lfull) == 5 and l1 == pytest.approx(lfull[:3], rel=1e-5)
    assert l2 == pytest.approx(lfull[3:], rel=1e-5)
    assert lfull[-1] < lfull[0] / 2
    files = net["scheduler"].python(
        "import s3fs; print(sorted(f.rsplit('/', 1)[-1] for f in "
        "s3fs.S3FileSystem().ls('mlkit/store/checkpoints/torch/ddp')))").stdout
    assert files.strip() == "['ckpt-000003.pt', 'ckpt-000004.pt']", files  # the two newest
    for h in ("client", "worker1", "worker2"):
        assert "checkpoints" not in net[h].run(["ls", "/tmp/work/.mlkit"]).stdout, h


def test_torch_checkpoints_without_a_store_are_refused_before_training_starts(remote, net):
    remote.ok(TORCH_FNS)
    for call in ("mlkit.train.torch(train_marked, epochs=2, name='ddp-nostore', **ddp)",
                 "mlkit.train.torch(train_plain, name='ddp-nostore', resume=True, **ddp)"):
        out = remote.run(call)
        assert out["type"] == "ClientOnlyPathError", out
        assert ("checkpoint folder '/tmp/work/.mlkit/checkpoints/torch/ddp-nostore'"
                in out["message"]), out["message"]
        assert "MLKIT_STORE" in out["message"]
    for h in ("worker1", "worker2"):
        assert net[h].read_file("/tmp/ddp-started") is None, h  # no rank ever started
    # A job that saves no checkpoints needs no store: it runs, and says it has none.
    got = remote.ok("plain = mlkit.train.torch(train_plain, name='ddp-nostore', **ddp)",
                    "[sorted(h for h, _ in plain.values), [m for _, m in plain.values],"
                    " plain.checkpoint_dir, plain.checkpoint]", timeout=300)
    assert got == [["worker1", "worker2"], [0.5, 0.5], None, None]
