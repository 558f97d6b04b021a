"""``mlkit.train.torch``: run ``train_fn(ctx)`` on Dask workers as the ranks of one
torch.distributed process group (DDP or FSDP2), following the recipe checked in this
environment: one ``client.submit`` per worker pinned with ``workers=[addr]``, each joining
``init_process_group`` over ``tcp://<rank-0 host>:<free port>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkit import _net
from mlkit._imports import require
from mlkit._interrupt import STOP_BUDGET_SECONDS, cancel
from mlkit.exceptions import ClientOnlyPathError, ConfigError, DataError, MlkitError, TrainingError
from mlkit.train import _checkpoint
from mlkit.train._channel import Channel
from mlkit.train._devices import workers_have_gpus
from mlkit.train._monitor import JobMonitor, WorkerLost
from mlkit.train._progress import Progress
from mlkit.train._torch_worker import CHECKPOINT_PATTERN, RankError, RankSpec, run_rank
from mlkit.train._tracking import MetricLog, log_datasets, training_run

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import dask.dataframe as dd
    import pandas as pd
    import torch as _torch
    import torch.distributed as dist
else:
    dd = require("dask.dataframe")
    pd = require("pandas")
    _torch = require("torch")
    dist = require("torch.distributed")

__all__ = ["torch", "TorchResult"]

_STRATEGIES = ("ddp", "fsdp")
_BACKENDS = ("auto", "gloo", "nccl")


@dataclass
class TorchResult:
    """What :func:`torch` returns.

    Attributes
    ----------
    value : Any
        What ``train_fn`` returned on rank 0.
    values : list
        What it returned on every rank, in rank order.
    history : pandas.DataFrame
        Rank 0's ``ctx.report`` calls, one row per step.
    run_id : str or None
        The job's MLflow run.
    checkpoint_dir : pathlib.Path, str or None
        The job's checkpoint folder: ``<mlkit home>/checkpoints/torch/<name>`` (a Path) when the
        workers share the client's disk; on a remote cluster the same place in the shared store
        or the tracking server's artifact store (a URL string); None on a remote cluster with
        neither (then the job could not save checkpoints).
    checkpoint : pathlib.Path, str or None
        The newest checkpoint the job wrote (load it with ``ctx.load_checkpoint(path)``): a Path
        or a URL string, like ``checkpoint_dir``; None when it wrote none.
    """

    value: Any
    values: list[Any]
    history: pd.DataFrame
    run_id: str | None
    checkpoint_dir: Path | str | None
    checkpoint: Path | str | None
    workers: list[str] = field(default_factory=list)
    backend: str = "gloo"
    strategy: str = "ddp"

    @property
    def world_size(self) -> int:
        return len(self.workers)


_CHECKPOINT_NAMES = frozenset({"save_checkpoint", "checkpoint_dir"})


def _uses_checkpoints(fn: Any, depth: int = 3) -> bool:
    """Whether ``train_fn`` (or a function it calls, looked up by name in its module, a few
    levels deep) mentions ``ctx.save_checkpoint`` / ``ctx.checkpoint_dir``: such a job needs a
    checkpoint folder every rank reaches, so its absence is refused before training starts."""
    import functools
    import inspect
    import types

    seen: set[int] = set()

    def visit(obj: Any, level: int) -> bool:
        if isinstance(obj, functools.partial):
            obj = obj.func
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if not isinstance(obj, types.FunctionType):
            call = inspect.getattr_static(type(obj), "__call__", None)  # a callable object
            if not isinstance(call, types.FunctionType):
                return False
            obj = call
        if id(obj) in seen:
            return False
        seen.add(id(obj))
        codes = [obj.__code__]
        names: set[str] = set()
        while codes:  # the function and the functions, lambdas, classes defined inside it
            code = codes.pop()
            names.update(code.co_names)
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        if names & _CHECKPOINT_NAMES:
            return True
        if level <= 0:
            return False
        scope = {**obj.__globals__}
        for cell, var in zip(obj.__closure__ or (), obj.__code__.co_freevars, strict=False):
            try:
                scope[var] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
        return any(visit(scope[n], level - 1) for n in names if n in scope)

    return visit(fn, depth)


def _host_of(address: str) -> str:
    from distributed.comm import get_address_host

    return get_address_host(address).strip("[]")


def _root_cause(errors: list[tuple[int, BaseException]]) -> tuple[int, BaseException]:
    """The rank whose error explains the others: the one that failed first (its peers then
    fail in their next collective with a lost connection, a mere consequence)."""
    timed = [(e.when, e.rank, e.error) for _, e in errors if isinstance(e, RankError)]
    if timed:
        _, rank, error = min(timed, key=lambda t: t[0])
        return rank, error
    return errors[0]


def _last_step(history: list[dict[str, Any]]) -> int | None:
    return int(history[-1]["step"]) if history else None


def _lost_error(gone: list[str], addrs: list[str], history: list[dict[str, Any]]
                ) -> TrainingError:
    ranks = [addrs.index(w) for w in gone if w in addrs]
    return TrainingError(
        f"worker(s) {gone} (rank {ranks}) left the cluster during training; the other ranks "
        "were stopped. Save checkpoints with ctx.save_checkpoint and run again with "
        "resume=True to continue",
        lost_workers=gone, ranks=ranks, step=_last_step(history),
    )


def _follow(
    client: Any,
    channel: Channel,
    futures: list[Any],
    addrs: list[str],
    bar: Progress,
    metric_log: MetricLog,
    timeout: float,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Follow the ranks from the notebook's thread until they end; turn failures into one
    TrainingError, an interrupt into a stop every rank agrees on."""
    monitor = JobMonitor(client, channel, addrs, bar, metric_log)
    for fut in futures:  # a rank's end is noticed at once, not at the next wait's timeout
        fut.add_done_callback(lambda _: channel.wake())

    def done(skip: Sequence[str] = ()) -> bool:
        return all(f.done() for f, a in zip(futures, addrs, strict=True) if a not in skip)

    outcome: dict[int, Any] = {}

    def failures() -> list[tuple[int, BaseException]]:
        """Ranks that ended with an error so far (their own, or the task's)."""
        for rank, fut in enumerate(futures):
            if rank in outcome or not fut.done():
                continue
            if fut.status == "error":
                outcome[rank] = {"error": fut.exception()}
            elif fut.status == "finished":
                outcome[rank] = fut.result()
        return [(r, o["error"]) for r, o in sorted(outcome.items()) if "error" in o]

    try:
        monitor.wait(lambda: done() or bool(failures()))
    except KeyboardInterrupt:
        # Every rank leaves at its next step (ctx.batches / ctx.should_stop agree on it), then
        # the futures go; control comes back within the interrupt budget either way.
        channel.stop(addrs)
        monitor.settle(done, min(timeout, STOP_BUDGET_SECONDS))
        cancel(client, futures)
        bar.close("stopped")
        raise
    except WorkerLost as lost:
        gone = lost.workers
        channel.stop(addrs)
        monitor.settle(lambda: done(gone), timeout)
        client.cancel(futures)
        bar.close("failed")
        raise _lost_error(gone, addrs, monitor.history) from None
    if failures():
        channel.stop(addrs)
        # A rank on a dead worker never finishes: wait only for the others.
        monitor.settle(lambda: done(monitor.lost_workers()), timeout)
        errors = failures()
        gone = monitor.lost_workers()
        client.cancel(futures)
        bar.close("failed")
        if gone:  # the peers' connection errors are a consequence of the lost worker
            raise _lost_error(gone, addrs, monitor.history)
        rank, exc = _root_cause(errors)
        if isinstance(exc, MlkitError):
            raise exc
        raise TrainingError(
            f"rank {rank} (worker {addrs[rank]}) failed: {type(exc).__name__}: {exc}",
            ranks=[rank], step=_last_step(monitor.history),
        ) from exc
    failures()  # collect every result
    metric_log.flush(force=True)
    bar.close("finished")
    return [outcome[r]["value"] for r in range(len(futures))], monitor.history


def _choose_workers(client: Any, workers: int | Sequence[str] | None) -> list[str]:
    from mlkit.cluster._workers import live_workers

    info = live_workers(client)
    ordered = [a for a, _ in sorted(info.items(), key=lambda kv: str(kv[1].get("name", kv[0])))]
    if not ordered:
        raise TrainingError("the cluster has no workers: scale it up with mlkit.cluster.scale(n)")
    if workers is None:
        return ordered
    if isinstance(workers, int) and not isinstance(workers, bool):
        if not 1 <= workers <= len(ordered):
            raise ConfigError(
                f"workers={workers} but the cluster has {len(ordered)} worker(s): pass 1.."
                f"{len(ordered)} or scale the cluster"
            )
        return ordered[:workers]
    if isinstance(workers, (list, tuple)) and workers:
        unknown = [w for w in workers if w not in info]
        if unknown:
            raise ConfigError(
                f"workers {unknown} are not in the cluster; its workers are {ordered}"
            )
        return list(dict.fromkeys(workers))
    raise ConfigError(
        f"workers must be None, a count or a list of worker addresses, got {workers!r}"
    )


def _assign_partitions(
    client: Any, data: dd.DataFrame, workers: list[str]
) -> tuple[list[list[Any]], list[int]]:
    """Materialise ``data`` and give each rank a balanced list of partitions, preferring the ones
    already held by its worker (no transfer), so ranks read mostly local memory."""
    from distributed import wait

    # One future per partition, in partition order (already-persisted partitions are reused).
    ordered = client.compute(data.to_delayed())
    wait(ordered)
    holders = client.who_has(ordered)
    n, world = len(ordered), len(workers)
    quota = -(-n // world)  # ceil
    rank_of = {w: r for r, w in enumerate(workers)}
    shards: list[list[int]] = [[] for _ in workers]
    spill: list[int] = []
    for i, fut in enumerate(ordered):
        local = [rank_of[w] for w in holders.get(fut.key, ()) if w in rank_of]
        local = [r for r in local if len(shards[r]) < quota]
        if local:
            shards[min(local, key=lambda r: len(shards[r]))].append(i)
        else:
            spill.append(i)
    for i in spill:  # partitions on no training worker, or over a full rank's quota
        shards[min(range(world), key=lambda r: len(shards[r]))].append(i)
    ids = [min(s) if s else -1 for s in shards]
    return [[ordered[i] for i in sorted(s)] for s in shards], ids


def torch(
    train_fn: Callable[[Any], Any],
    data: Any = None,
    workers: int | Sequence[str] | None = None,
    backend: str = "auto",
    strategy: str = "ddp",
    epochs: int = 1,
    *,
    params: dict[str, Any] | None = None,
    name: str = "torch",
    resume: bool = False,
    timeout: float = 120.0,
    progress: bool = True,
    track: bool = True,
    log_data: bool = False,
    client: Any = None,
) -> TorchResult:
    """Run ``train_fn(ctx)`` on Dask workers as one torch.distributed job (one rank per worker).

    Parameters
    ----------
    train_fn : callable
        ``train_fn(ctx)`` with ctx a :class:`~mlkit.train.TrainContext` (rank, world_size,
        device, shard, batches, prepare, report, save/load_checkpoint, freeze). It is pickled
        to the workers (functions defined in the notebook are fine).
    data : dask or pandas DataFrame, optional
        Split into one shard per rank, partitions kept on the worker that holds them.
    workers : int or list of str, optional
        How many workers (the first N by name) or which addresses; default all.
    backend : {"auto", "gloo", "nccl"}
        "auto": nccl on GPU workers, gloo on CPU workers.
    strategy : {"ddp", "fsdp"}
        ``ctx.prepare(model)`` wraps with DistributedDataParallel, or shards parameters across
        ranks with FSDP2 (``torch.distributed.fsdp.fully_shard``, which also runs on CPU/gloo).
    epochs : int
        Passed to ``train_fn`` as ``ctx.epochs``; the progress bar counts them.
    params : dict, optional
        Hyperparameters: ``ctx.params`` on every rank, and logged to MLflow.
    name : str
        MLflow run name and checkpoint folder: ``<mlkit home>/checkpoints/torch/<name>`` when
        the workers share the client's disk. On a cluster whose workers do not (a ``connect``ed
        one), the same place in the shared store (``MLKIT_STORE``), else in mlkit's tracking
        server's artifact store; with neither, a job that saves checkpoints (or ``resume=True``)
        is refused with :class:`~mlkit.exceptions.ClientOnlyPathError` before it starts.
    resume : bool
        Keep this name's checkpoints so ``ctx.load_checkpoint()`` returns the newest; without
        it a job starts its folder over.
    timeout : float
        Seconds a collective may wait for a silent rank before failing.
    progress, track : bool
        Show progress; log params and rank 0's reports to MLflow (one run for the job).
    log_data : bool
        Also record a fingerprint of ``data`` as an MLflow dataset input (one extra pass).
    client : distributed.Client, optional
        Defaults to the active mlkit cluster's client.

    Returns
    -------
    TorchResult

    Examples
    --------
    >>> def train_fn(ctx):
    ...     model = ctx.prepare(torch.nn.Linear(4, 1))
    ...     ...
    ...     return ctx.full_state_dict(model)
    >>> res = mlkit.train.torch(train_fn, data=ddf, epochs=3)      # doctest: +SKIP
    >>> res.history.tail(1)                                        # doctest: +SKIP
    """
    # ---- validate before anything starts ----
    if not callable(train_fn):
        raise ConfigError(f"train_fn must be a function train_fn(ctx), but got {train_fn!r}")
    if strategy not in _STRATEGIES:
        raise ConfigError(f"strategy={strategy!r}: choose one of {_STRATEGIES}")
    if backend not in _BACKENDS:
        raise ConfigError(f"backend={backend!r}: choose one of {_BACKENDS}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs must be a positive integer, but got {epochs!r}")
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"params must be a dict, but got {params!r}")
    if not (isinstance(timeout, (int, float)) and timeout >= 1):
        raise ConfigError(f"timeout must be a number of seconds >= 1, but got {timeout!r}")
    if data is not None and not isinstance(data, (dd.DataFrame, pd.DataFrame)):
        raise DataError(
            f"data must be a dask or pandas DataFrame, but got {type(data).__name__}"
        )
    if strategy == "fsdp":
        try:
            from torch.distributed.fsdp import fully_shard  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"strategy='fsdp' needs torch.distributed.fsdp.fully_shard (FSDP2, torch>=2.6); "
                f"this torch is {_torch.__version__}. The older FullyShardedDataParallel does not "
                "run on CPU. Upgrade torch or use strategy='ddp'"
            ) from None
    # The checkpoint folder as every rank sees it: the mlkit home on a cluster sharing the
    # client's disk, else the shared store or the tracking server's artifact store (the same
    # place xgboost's checkpoints go). A job that never checkpoints needs neither.
    folder: Path | str | None
    try:
        folder = _checkpoint.folder("torch", name)
        no_folder = None
    except ClientOnlyPathError as exc:
        folder, no_folder = None, exc
    if no_folder is not None and (resume or _uses_checkpoints(train_fn)):
        raise no_folder
    store_options: dict[str, Any] = {}
    if isinstance(folder, str):
        from mlkit import _store

        if folder.startswith(_store.url() or "\0"):
            store_options = _store.options()

    if client is None:
        from mlkit.cluster import get_client

        client = get_client()
    addrs = _choose_workers(client, workers)
    world = len(addrs)
    use_cuda = workers_have_gpus(client, addrs)
    chosen = backend if backend != "auto" else ("nccl" if use_cuda else "gloo")
    if chosen == "nccl" and not use_cuda:
        raise ConfigError(
            "backend='nccl' needs a GPU on every worker and these workers have none: use "
            "backend='gloo' (or 'auto')"
        )
    if chosen == "nccl" and not dist.is_nccl_available():
        raise ConfigError(
            "this torch build has no NCCL: install a CUDA build or use backend='gloo'"
        )
    if strategy == "fsdp" and use_cuda and chosen == "gloo":
        raise ConfigError(
            "strategy='fsdp' on GPU workers needs backend='nccl' (gloo cannot reduce-scatter "
            "CUDA tensors): use backend='auto'"
        )

    shards: list[Any] = [None] * world
    shard_ids = list(range(world))
    if data is not None:
        if isinstance(data, pd.DataFrame):
            if len(data) < world:
                raise DataError(f"data has {len(data)} rows, fewer than the {world} ranks")
            data = dd.from_pandas(data, npartitions=world, sort=False)
        if data.npartitions < world:
            raise DataError(
                f"data has {data.npartitions} partition(s) for {world} ranks: every rank needs at "
                f"least one; use data.repartition(npartitions={world})"
            )
        shards, shard_ids = _assign_partitions(client, data, addrs)

    if not resume and folder is not None:
        _checkpoint.clear(folder, (CHECKPOINT_PATTERN,))
    host = _host_of(addrs[0])
    port = client.run(_net.free_port, host, workers=[addrs[0]])[addrs[0]]
    init_method = f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"

    logged = {
        **(params or {}),
        "strategy": strategy,
        "backend": chosen,
        "world_size": world,
        "epochs": epochs,
    }
    with training_run(name, logged, track) as run:
        if log_data:
            log_datasets(run, {"training": ("train", data)})
        metric_log = MetricLog(run)
        bar = Progress(epochs, f"torch {strategy} x{world}", enabled=progress, unit="epoch")
        with Channel(client) as channel:
            futures = []
            for rank, addr in enumerate(addrs):
                spec = RankSpec(
                    train_fn=train_fn, rank=rank, world_size=world, backend=chosen,
                    strategy=strategy, init_method=init_method, timeout=float(timeout),
                    epochs=epochs, job_id=channel.job_id, topic=channel.topic,
                    checkpoint_dir=str(folder) if folder is not None else None,
                    use_cuda=use_cuda, params=dict(params or {}), shard_id=shard_ids[rank],
                    store_options=store_options,
                    no_checkpoints=str(no_folder) if no_folder is not None else "",
                )
                futures.append(
                    client.submit(
                        run_rank, spec, shards[rank], workers=[addr], allow_other_workers=False,
                        pure=False, key=f"mlkit-torch-{channel.job_id}-rank{rank}",
                    )
                )
            values, rows = _follow(client, channel, futures, addrs, bar, metric_log, timeout)
        history = pd.DataFrame(rows)
        if not history.empty:
            history = history.set_index("step")
        last = _checkpoint.latest(folder, CHECKPOINT_PATTERN) if folder is not None else None
    return TorchResult(
        value=values[0],
        values=values,
        history=history,
        run_id=run.run_id if run else None,
        checkpoint_dir=folder,
        checkpoint=last,  # a Path in a local folder, a URL string in a store
        workers=addrs,
        backend=chosen,
        strategy=strategy,
    )
