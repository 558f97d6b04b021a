"""mlkit.train.torch: DDP and FSDP2 ranks on a real 2-worker LocalCluster (gloo on CPU)."""

from __future__ import annotations

import os
import signal

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

import mlkit
from mlkit.exceptions import ConfigError, DataError, TrainingError

FEATURES = ["a", "b", "c", "d"]


def _data(rows: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(rows, 4)), columns=FEATURES)
    df["y"] = 2 * df.a - df.b + 0.5 * df.c * df.d
    df["y2"] = df.a + df.b  # a second task for transfer learning
    df.insert(0, "id", np.arange(rows))
    return df


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def _runs() -> list:
    mlkit.track.configure()
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def train_in_order(ctx):
    """Plain SGD over the shard in row order; returns what the test needs to check."""
    model = ctx.prepare(_model())
    opt = torch.optim.SGD(model.parameters(), lr=ctx.params["lr"])
    for epoch in range(ctx.epochs):
        for X, y in ctx.batches(50, target="y", features=FEATURES, shuffle=False):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)
            loss.backward()
            opt.step()
            ctx.report(loss=ctx.mean(loss.item()))
        ctx.report(epoch=epoch)
    local = sum(
        (p.to_local() if hasattr(p, "to_local") else p).numel() for p in model.parameters()
    )
    return {
        "state": ctx.full_state_dict(model),
        "ids": ctx.shard["id"].tolist(),
        "local_numel": local,
        "rank": ctx.rank,
    }


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_ranks_match_single_process_on_the_global_batch(cluster, strategy):
    df = _data()
    res = mlkit.train.torch(train_in_order, data=df, strategy=strategy, epochs=2,
                            params={"lr": 0.1}, progress=False, name=f"match-{strategy}")
    r0, r1 = res.values
    assert (r0["rank"], r1["rank"]) == (0, 1) and res.world_size == 2
    # every rank ends with the very same parameters
    for key in r0["state"]:
        assert torch.equal(r0["state"][key], r1["state"][key]), key
    full = sum(v.numel() for v in r0["state"].values())
    if strategy == "fsdp":  # parameters really are sharded: each rank holds about half
        assert r0["local_numel"] < full and r0["local_numel"] + r1["local_numel"] == full
    else:
        assert r0["local_numel"] == full

    # the same steps in one process: global batch k = rank 0's batch k + rank 1's batch k
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    shards = [df.set_index("id").loc[r["ids"]] for r in (r0, r1)]
    assert sorted(r0["ids"] + r1["ids"]) == list(range(len(df)))
    losses = []
    for _ in range(2):
        for k in range(len(shards[0]) // 50):
            batch = pd.concat([s.iloc[k * 50 : (k + 1) * 50] for s in shards])
            X = torch.tensor(batch[FEATURES].to_numpy(), dtype=torch.float32)
            y = torch.tensor(batch["y"].to_numpy(), dtype=torch.float32)
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(r0["state"][key], value, rtol=1e-4, atol=1e-5)

    # rank 0's reports: the loss decreases, and they went into ONE MLflow run
    reported = res.history["loss"].dropna().to_numpy()
    np.testing.assert_allclose(reported, losses, rtol=1e-4)
    assert reported[-5:].mean() < reported[:5].mean() / 2
    runs = [r for r in _runs() if r.info.run_name == f"match-{strategy}"]
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params["world_size"] == "2"
    logged = mlflow.MlflowClient().get_metric_history(res.run_id, "loss")
    assert len(logged) == len(losses)


def train_resumable(ctx):
    model = _model()
    opt_model = ctx.prepare(model)
    opt = torch.optim.SGD(opt_model.parameters(), lr=0.05, momentum=0.9)
    ckpt = ctx.load_checkpoint(model=opt_model, optimizer=opt)
    start = ckpt["extra"]["epoch"] + 1 if ckpt else 0
    for epoch in range(start, ctx.params.get("stop_after", ctx.epochs)):
        for X, y in ctx.batches(64, target=ctx.params.get("target", "y"), features=FEATURES,
                                epoch=epoch):
            opt.zero_grad()
            torch.nn.functional.mse_loss(opt_model(X).squeeze(-1), y).backward()
            opt.step()
        ctx.save_checkpoint(opt_model, opt, step=epoch, epoch=epoch)
    return ctx.full_state_dict(opt_model)


def train_head_only(ctx):
    """Transfer learning: the pretrained body, frozen; a fresh head on a new task."""
    model = _model()
    ctx.load_checkpoint(ctx.params["pretrained"], model=model, exclude=["2"])
    torch.manual_seed(1)
    model[2].reset_parameters()
    frozen = ctx.freeze(model, ["0"])
    model = ctx.prepare(model)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    first = last = None
    for epoch in range(ctx.epochs):
        for X, y in ctx.batches(64, target="y2", features=FEATURES, epoch=epoch):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)
            loss.backward()
            opt.step()
            first = loss.item() if first is None else first
            last = loss.item()
    return {"state": ctx.full_state_dict(model), "frozen": frozen, "first": first, "last": last}


def test_checkpoint_resume_equals_uninterrupted_and_transfer_learning(cluster):
    df = _data(seed=3)
    common = dict(data=df, epochs=4, progress=False, track=False)
    full = mlkit.train.torch(train_resumable, name="full", **common)

    part = mlkit.train.torch(train_resumable, name="resumed", params={"stop_after": 2}, **common)
    assert part.checkpoint is not None and part.checkpoint.name == "ckpt-000001.pt"
    resumed = mlkit.train.torch(train_resumable, name="resumed", resume=True, **common)
    assert resumed.checkpoint.name == "ckpt-000003.pt"
    for key, value in full.value.items():
        torch.testing.assert_close(resumed.value[key], value, rtol=1e-5, atol=1e-6)

    tl = mlkit.train.torch(train_head_only, data=df, epochs=2, progress=False, track=False,
                           name="transfer", params={"pretrained": str(full.checkpoint)})
    out = tl.value
    assert out["frozen"] == ["0.weight", "0.bias"]
    torch.testing.assert_close(out["state"]["0.weight"], full.value["0.weight"])  # untouched
    assert not torch.allclose(out["state"]["2.weight"], full.value["2.weight"])  # trained
    assert out["last"] < out["first"]


def test_failing_rank_is_one_training_error_and_workers_stay_usable(cluster):
    def train_fn(ctx):
        if ctx.rank == 1:
            raise ValueError("bad batch on rank 1")
        for _ in ctx.batches(10, target="y"):
            pass

    with pytest.raises(TrainingError, match=r"rank 1 .*ValueError: bad batch on rank 1") as err:
        mlkit.train.torch(train_fn, data=_data(100), progress=False, timeout=30, name="boom")
    assert (err.value.ranks, err.value.lost_workers) == ([1], [])
    assert [r.info.status for r in _runs() if r.info.run_name == "boom"] == ["FAILED"]
    # the process groups were destroyed: a new job on the same workers runs
    res = mlkit.train.torch(lambda ctx: ctx.world_size * 10 + ctx.rank, progress=False,
                            track=False)
    assert res.values == [20, 21]


def test_interrupt_stops_every_rank_and_ends_run_killed(cluster):
    def train_fn(ctx):
        model = ctx.prepare(_model())
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for epoch in range(ctx.epochs):
            for X, y in ctx.batches(100, target="y", features=FEATURES, epoch=epoch):
                opt.zero_grad()
                torch.nn.functional.mse_loss(model(X).squeeze(-1), y).backward()
                opt.step()
            ctx.report(epoch=epoch, done=float(epoch))
            if epoch == 2 and ctx.rank == 0:
                os.kill(ctx.params["pid"], signal.SIGINT)  # the kernel's stop button

    with pytest.raises(KeyboardInterrupt):
        mlkit.train.torch(train_fn, data=_data(), epochs=100_000, progress=False,
                          params={"pid": os.getpid()}, name="stopme")
    (run,) = [r for r in _runs() if r.info.run_name == "stopme"]
    assert run.info.status == "KILLED"
    res = mlkit.train.torch(lambda ctx: ctx.rank, progress=False, track=False)
    assert res.values == [0, 1]


def test_combinations_that_cannot_work_fail_clearly(cluster, mlkit_home):
    def noop(ctx):
        return None

    with pytest.raises(ConfigError, match="backend='nccl' needs a GPU.*backend='gloo'"):
        mlkit.train.torch(noop, backend="nccl")
    with pytest.raises(ConfigError, match="strategy='zero'"):
        mlkit.train.torch(noop, strategy="zero")
    with pytest.raises(ConfigError, match="workers=5 but the cluster has 2"):
        mlkit.train.torch(noop, workers=5)
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        mlkit.train.torch(noop, epochs=0)
    import dask.dataframe as dd

    one = dd.from_pandas(_data(100), npartitions=1)
    with pytest.raises(DataError, match="1 partition.*repartition"):
        mlkit.train.torch(noop, data=one)
    # nothing was tracked (the store itself may exist: a cluster started in this test's home
    # creates it in the background, see mlkit.cluster._warm)
    assert _runs() == []


def test_one_worker_and_ctx_errors(cluster):
    def train_fn(ctx):
        with pytest.raises(ConfigError, match="no layer named 'body'"):
            ctx.freeze(_model(), ["body"])
        return ctx.world_size, len(ctx.shard)

    res = mlkit.train.torch(train_fn, data=_data(100), workers=1, progress=False, track=False)
    assert res.values == [(1, 100)]

    def wrong_target(ctx):
        next(iter(ctx.batches(8, target="label")))

    with pytest.raises(ConfigError, match="target 'label' is not a column"):
        mlkit.train.torch(wrong_target, data=_data(100), progress=False, track=False)


@pytest.mark.slow
def test_killed_worker_is_a_training_error_within_the_bound(fresh_cluster):
    import time

    def train_fn(ctx):
        for epoch in range(ctx.epochs):
            for _ in ctx.batches(10, target="y", epoch=epoch):
                time.sleep(0.01)
            if epoch == 1 and ctx.rank == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies

    bound = 30
    start = time.monotonic()
    with pytest.raises(TrainingError,
                       match=r"\(rank \[1\]\) left the cluster during training") as err:
        mlkit.train.torch(train_fn, data=_data(200), epochs=1000, timeout=bound,
                          progress=False, name="lost")
    assert err.value.ranks == [1] and len(err.value.lost_workers) == 1
    assert err.value.lost_workers[0] in str(err.value)
    assert time.monotonic() - start < bound + 30
    assert [r.info.status for r in _runs() if r.info.run_name == "lost"] == ["FAILED"]
    fresh_cluster.client.wait_for_workers(2, timeout=60)
    assert mlkit.train.torch(lambda ctx: ctx.rank, progress=False, track=False).values == [0, 1]


def test_a_job_started_while_the_workers_restart_waits_for_them(fresh_cluster):
    # What a laptop waking from sleep does: the scheduler drops every worker whose heartbeat is
    # older than its TTL and the nannies start them again. A job started in that window ran on
    # "no workers" (CI: "the cluster has no workers: scale it up").
    from tests._wait import wait_for

    victims = [w.pid for w in mlkit.cluster.status().workers]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not fresh_cluster.client.scheduler_info(n_workers=-1)["workers"],
             timeout=60, what="the scheduler to drop both killed workers")
    res = mlkit.train.torch(lambda ctx: (ctx.world_size, ctx.rank), progress=False, track=False)
    assert res.values == [(2, 0), (2, 1)]
    assert not set(victims) & {w.pid for w in mlkit.cluster.status().workers}
