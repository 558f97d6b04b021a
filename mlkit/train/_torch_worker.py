"""What runs on each Dask worker for ``mlkit.train.torch``: one rank of a torch.distributed
process group, and the :class:`TrainContext` handed to the user's ``train_fn``.

The process group is always destroyed, also when ``train_fn`` fails or is stopped, so the worker
can run the next job.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlkit._imports import require
from mlkit.exceptions import ConfigError, TrainingError
from mlkit.train import _checkpoint
from mlkit.train._channel import publish, release, stop_flag

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
    import torch
    import torch.distributed as dist
    import torch.nn as nn
else:
    np = require("numpy")
    pd = require("pandas")
    torch = require("torch")
    dist = require("torch.distributed")
    nn = require("torch.nn")

__all__ = [
    "TrainContext",
    "TrainingStopped",
    "RankError",
    "RankSpec",
    "run_rank",
    "CHECKPOINT_PATTERN",
]

CHECKPOINT_PATTERN = "ckpt-*.pt"

# torch.distributed has one default process group per process: two jobs on one worker process
# (a worker with several threads) would trample each other, so a rank holds this lock.
_RANK_LOCK = threading.Lock()


class RankError(Exception):
    """How a rank's failure travels back: the original error plus when it happened, so the
    client can tell the rank that failed first from peers that then lost their connection."""

    def __init__(self, rank: int, when: float, error: BaseException) -> None:
        super().__init__(f"rank {rank}: {type(error).__name__}: {error}")
        self.rank, self.when, self.error = rank, when, error

    def __reduce__(self) -> tuple[Any, ...]:
        return (RankError, (self.rank, self.when, self.error))


def _portable(error: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # an exception type the client cannot rebuild: keep its text
        return RuntimeError(f"{type(error).__name__}: {error}")


class TrainingStopped(BaseException):
    """Raised inside ``train_fn`` (by ``ctx.batches`` / ``ctx.should_stop``) when the notebook
    asked the job to stop. A BaseException, so a broad ``except Exception`` does not swallow it.
    """


@dataclass
class RankSpec:
    """Everything one rank needs, computed on the client (plain data plus ``train_fn``)."""

    train_fn: Any
    rank: int
    world_size: int
    backend: str
    strategy: str
    init_method: str
    timeout: float
    epochs: int
    job_id: str
    topic: str
    checkpoint_dir: str | None  # a local folder, a URL in the shared store, or None (see below)
    use_cuda: bool = False
    shard_id: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    # fsspec options for a checkpoint folder in the shared store (the workers do not see the
    # notebook's MLKIT_STORE_OPTIONS)
    store_options: dict[str, Any] = field(default_factory=dict)
    # Why there is no checkpoint folder (a remote cluster with no shared store): the refusal
    # ctx.save_checkpoint raises
    no_checkpoints: str = ""


class TrainContext:
    """The handle ``train_fn(ctx)`` gets on every rank.

    Attributes
    ----------
    rank, world_size : int
        This rank and the number of ranks (one per worker).
    device : torch.device
        ``cuda`` on GPU workers, else ``cpu``.
    epochs : int
        The ``epochs=`` the job was started with.
    params : dict
        The ``params=`` the job was started with.
    shard : pandas.DataFrame or None
        This rank's rows of ``data`` (the partitions that already lived on this worker where
        possible).
    checkpoint_dir : pathlib.Path, str or None
        Where :meth:`save_checkpoint` writes: ``<mlkit home>/checkpoints/torch/<name>`` (a Path)
        when the workers share the client's disk, else the same place in the shared store (a
        URL string such as ``s3://bucket/mlkit/checkpoints/torch/<name>``); None on a remote
        cluster with no shared store.

    Examples
    --------
    >>> def train_fn(ctx):
    ...     model = ctx.prepare(torch.nn.Linear(4, 1))
    ...     opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ...     for epoch in range(ctx.epochs):
    ...         for X, y in ctx.batches(64, target="y"):
    ...             opt.zero_grad()
    ...             loss = torch.nn.functional.mse_loss(model(X).squeeze(-1), y)
    ...             loss.backward()
    ...             opt.step()
    ...         ctx.report(epoch=epoch, loss=ctx.mean(loss.item()))
    """

    def __init__(self, spec: RankSpec, shard: pd.DataFrame | None, device: torch.device):
        self.rank = spec.rank
        self.world_size = spec.world_size
        self.backend = spec.backend
        self.strategy = spec.strategy
        self.epochs = spec.epochs
        self.params = dict(spec.params)
        self.device = device
        self.shard = shard
        self.checkpoint_dir: _checkpoint.Where | None = (
            _checkpoint.as_where(spec.checkpoint_dir) if spec.checkpoint_dir is not None else None
        )
        self._spec = spec
        self._stop = stop_flag(spec.job_id)
        self._reports = 0
        self._tensors: dict[Any, tuple[torch.Tensor, torch.Tensor | None]] = {}
        # gloo reduces CPU tensors, nccl CUDA tensors
        self._comm_device = device if spec.backend == "nccl" else torch.device("cpu")

    # -- collectives ---------------------------------------------------------------------------
    def _allreduce(self, values: Sequence[float], op: Any) -> list[float]:
        if self.world_size == 1:
            return [float(v) for v in values]
        t = torch.tensor(list(values), dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t, op=op)
        return t.cpu().tolist()

    def mean(self, value: float | torch.Tensor) -> float:
        """The average of ``value`` over all ranks (every rank must call it).

        Examples
        --------
        >>> ctx.report(loss=ctx.mean(loss.item()))      # doctest: +SKIP
        """
        v = float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else value
        return self._allreduce([float(v)], dist.ReduceOp.SUM)[0] / self.world_size

    def should_stop(self) -> bool:
        """True on every rank once the notebook asked the job to stop (a collective call).

        ``ctx.batches`` checks it for you; call it in loops that do not use ``ctx.batches``.
        """
        return self._allreduce([float(self._stop.is_set())], dist.ReduceOp.MAX)[0] > 0

    # -- data ----------------------------------------------------------------------------------
    def _tensors_for(
        self, features: tuple[str, ...], target: str | None, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = (features, target, dtype)
        if key not in self._tensors:
            assert self.shard is not None
            values = self.shard[list(features)].to_numpy(dtype=np.float32, copy=True)
            X = torch.from_numpy(values).to(dtype)
            y = None
            if target is not None:
                col = self.shard[target]
                if pd.api.types.is_float_dtype(col.dtype):
                    y = torch.from_numpy(col.to_numpy(dtype=np.float32, copy=True)).to(dtype)
                else:  # class labels
                    y = torch.from_numpy(col.to_numpy(dtype=np.int64, copy=True))
            self._tensors[key] = (X, y)
        return self._tensors[key]

    def batches(
        self,
        batch_size: int,
        *,
        target: str | None = None,
        features: Sequence[str] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> Iterator[Any]:
        """This rank's shard as batches of tensors on ``ctx.device``: ``(X, y)`` or ``X``.

        Every rank yields the same number of batches (the smallest shard decides), so DDP's
        gradient all-reduce never waits for a rank that ran out of data; a stop request from
        the notebook raises :class:`TrainingStopped` on all ranks at the same batch.

        Parameters
        ----------
        batch_size : int
            Rows per batch on this rank (the global batch is ``batch_size * world_size``).
        target : str, optional
            Label column (float columns give float tensors, others int64 class labels).
        features : sequence of str, optional
            Feature columns (default: every column but ``target``).
        shuffle, seed, epoch :
            Shuffle with a generator seeded by ``seed``, ``epoch`` and the shard, so a run
            repeats exactly whichever worker got which partitions.

        Examples
        --------
        >>> for X, y in ctx.batches(256, target="target", epoch=epoch):   # doctest: +SKIP
        ...     ...
        """
        if self.shard is None:
            raise ConfigError("this job has no data: pass data= to mlkit.train.torch")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, but got {batch_size!r}")
        if target is not None and target not in self.shard.columns:
            raise ConfigError(
                f"target {target!r} is not a column of the data: {list(self.shard.columns)}"
            )
        cols = tuple(features) if features is not None else tuple(
            c for c in self.shard.columns if c != target
        )
        unknown = [c for c in cols if c not in self.shard.columns]
        if unknown:
            raise ConfigError(f"features {unknown} are not columns of the data")
        X, y = self._tensors_for(cols, target, dtype)
        n = len(X)
        if shuffle:
            # Seeded by the shard (its first partition), not the rank: which worker holds
            # which partitions varies from run to run, the global batches then do not.
            seed_value = int(seed) * 1_000_003 + int(epoch) * 7919 + self._spec.shard_id
            gen = torch.Generator().manual_seed(seed_value)
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        local = n // batch_size if drop_last else math.ceil(n / batch_size)
        count = int(self._allreduce([local], dist.ReduceOp.MIN)[0])
        for i in range(count):
            if self.should_stop():
                raise TrainingStopped()
            idx = order[i * batch_size : (i + 1) * batch_size]
            xb = X[idx].to(self.device, non_blocking=True)
            if y is None:
                yield xb
            else:
                yield xb, y[idx].to(self.device, non_blocking=True)

    # -- models --------------------------------------------------------------------------------
    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to ``ctx.device`` and wrap it for the job's strategy.

        ``"ddp"``: DistributedDataParallel (rank 0's weights are broadcast, gradients averaged).
        ``"fsdp"``: FSDP2 ``fully_shard`` on every child module with parameters and on the root,
        so each rank keeps only its shard of the parameters (rank 0's weights first broadcast,
        so every rank starts from the same model). Create the optimizer after this call.
        """
        model = model.to(self.device)
        if self.strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            with torch.no_grad():
                for tensor in [*model.parameters(), *model.buffers()]:
                    dist.broadcast(tensor.data, src=0)
            for child in model.children():
                if any(True for _ in child.parameters()):
                    fully_shard(child)
            # fully_shard returns the module itself, its class extended with FSDPModule
            return cast("nn.Module", fully_shard(model))
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    @staticmethod
    def freeze(model: nn.Module, layers: Iterable[str]) -> list[str]:
        """Stop training the named layers (transfer learning); returns the frozen parameters.

        Call it before :meth:`prepare`. ``layers`` are module names as in
        ``model.named_modules()`` (``"body"``, ``"body.0"``) or parameter names.

        Examples
        --------
        >>> ctx.freeze(model, ["body"])      # doctest: +SKIP
        ['body.0.weight', 'body.0.bias', ...]
        """
        if _is_wrapped(model):
            raise ConfigError(
                "freeze layers before ctx.prepare(model): DDP/FSDP fix them at wrap time"
            )
        names = [layers] if isinstance(layers, str) else list(layers)
        params = dict(model.named_parameters())
        frozen: list[str] = []
        for name in names:
            hit = [p for p in params if p == name or p.startswith(f"{name}.")]
            if not hit:
                modules = [m for m, _ in model.named_modules() if m]
                raise ConfigError(f"no layer named {name!r} in the model; its layers are {modules}")
            for p in hit:
                params[p].requires_grad_(False)
            frozen.extend(hit)
        return frozen

    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The whole model's weights as CPU tensors on every rank (gathers FSDP shards; every
        rank must call it). Keys are those of the unwrapped model.
        """
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
        tensors = cast("dict[str, torch.Tensor]", state)  # a model's state: tensors only
        return {k: v.detach().cpu().clone() for k, v in tensors.items()}

    # -- reporting -----------------------------------------------------------------------------
    def report(
        self, step: int | None = None, *, epoch: int | None = None, **metrics: float
    ) -> None:
        """Stream metrics to the notebook's progress display and the job's MLflow run.

        Call it on every rank; rank 0's values are kept (average them first with
        :meth:`mean`). ``epoch`` moves the progress bar (and is recorded as a metric too);
        ``step`` is the MLflow step (default: a counter of reports).

        Examples
        --------
        >>> ctx.report(epoch=epoch, loss=ctx.mean(loss.item()))     # doctest: +SKIP
        """
        self._reports += 1
        if self.rank != 0:
            return
        clean = {str(k): float(v) for k, v in metrics.items()}
        if epoch is not None:
            clean["epoch"] = float(epoch)
        msg = {
            "step": int(step) if step is not None else self._reports,
            "metrics": clean,
            "position": int(epoch) + 1 if epoch is not None else None,
        }
        publish(self._spec.topic, msg)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(
        self,
        model: nn.Module | None = None,
        optimizer: Any = None,
        *,
        step: int | None = None,
        **extra: Any,
    ) -> Path | str:
        """Save the full model (and optimizer) state; every rank must call it.

        Rank 0 writes ``ckpt-<step>.pt`` atomically in :attr:`checkpoint_dir` (the two newest
        are kept): a local file when the workers share the client's disk, else one object in
        the shared store (the returned path is then a URL string). ``extra`` values (epoch, ...)
        are stored beside the weights. ``step`` defaults to one after the newest checkpoint.

        Examples
        --------
        >>> ctx.save_checkpoint(model, opt, step=epoch, epoch=epoch)   # doctest: +SKIP
        """
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_state_dict,
        )

        folder = self.checkpoint_dir
        if folder is None:
            from mlkit.exceptions import ClientOnlyPathError

            raise ClientOnlyPathError(self._spec.no_checkpoints)
        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state: dict[str, Any] = {"format": "mlkit.train.torch/1", "extra": extra}
        if model is not None and optimizer is not None:
            state["model"], state["optimizer"] = get_state_dict(model, optimizer, options=opts)
        elif model is not None:
            state["model"] = get_model_state_dict(model, options=opts)
        if step is None:  # one after the newest checkpoint of this name, as rank 0 sees it
            box: list[Any] = [None]
            if self.rank == 0:
                last = _checkpoint.latest(folder, CHECKPOINT_PATTERN)
                box[0] = _checkpoint.step_of(last) + 1 if last is not None else 0
            if self.world_size > 1:
                dist.broadcast_object_list(box, src=0)
            step = box[0]
        n = int(step)
        state["step"] = n
        path = _checkpoint.join(folder, f"ckpt-{n:06d}.pt")
        if self.rank == 0:
            if isinstance(folder, Path):
                folder.mkdir(parents=True, exist_ok=True)
            _checkpoint.write_atomic(path, lambda p: torch.save(state, p))
            _checkpoint.prune(folder, CHECKPOINT_PATTERN, keep=2)
        if self.world_size > 1:
            dist.barrier()
        return path

    def load_checkpoint(
        self,
        path: str | Path | None = None,
        *,
        model: nn.Module | None = None,
        optimizer: Any = None,
        strict: bool = True,
        exclude: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """Load a checkpoint on every rank (rank 0 reads, then broadcasts); every rank calls it.

        Parameters
        ----------
        path : str or Path, optional
            A file from :meth:`save_checkpoint` (of this or an earlier job, e.g. a pretrained
            model) or a plain ``torch.save(model.state_dict())``: a path on rank 0's machine or
            a URL (``s3://...``, the ``res.checkpoint`` of a job on a remote cluster). Default:
            the newest checkpoint of this job's name (None if there is none: a fresh start).
        model : torch.nn.Module, optional
            Load the weights into it (plain, or after :meth:`prepare`).
        optimizer : torch.optim.Optimizer, optional
            Restore its state too (when the checkpoint has one).
        strict : bool
            Every weight of ``model`` (not excluded) must be in the checkpoint and vice versa.
        exclude : iterable of str
            Layer names not to load (e.g. a new head for transfer learning).

        Returns
        -------
        dict or None
            ``{"model": ..., "optimizer": ..., "step": n, "extra": {...}}``.

        Examples
        --------
        >>> ckpt = ctx.load_checkpoint(model=model, optimizer=opt)       # doctest: +SKIP
        >>> start = ckpt["step"] + 1 if ckpt else 0                      # doctest: +SKIP
        """
        box: list[Any] = [None]
        if self.rank == 0:
            box[0] = _read_checkpoint(path, self.checkpoint_dir)
        if self.world_size > 1:
            dist.broadcast_object_list(box, src=0)
        ckpt = box[0]
        if isinstance(ckpt, dict) and "__error__" in ckpt:
            raise TrainingError(ckpt["__error__"])
        if ckpt is None:
            return None
        if not (isinstance(ckpt, dict) and ckpt.get("format") == "mlkit.train.torch/1"):
            ckpt = {"model": ckpt, "step": -1, "extra": {}}  # a plain state dict
        skip = [exclude] if isinstance(exclude, str) else list(exclude)
        if model is not None and ckpt.get("model") is not None:
            _load_weights(model, ckpt["model"], strict, skip)
        if optimizer is not None and ckpt.get("optimizer") is not None and model is not None:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_optimizer_state_dict,
            )

            set_optimizer_state_dict(
                model, optimizer, ckpt["optimizer"], options=StateDictOptions(full_state_dict=True)
            )
        return ckpt


def _is_wrapped(model: nn.Module) -> bool:
    from torch.nn.parallel import DistributedDataParallel

    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch without FSDP2
        FSDPModule = ()  # type: ignore[assignment,misc]  # noqa: N806
    return isinstance(model, (DistributedDataParallel, FSDPModule))


def _excluded(key: str, skip: Sequence[str]) -> bool:
    return any(key == s or key.startswith(f"{s}.") for s in skip)


def _read_checkpoint(path: str | Path | None, folder: _checkpoint.Where | None) -> Any:
    """Rank 0: the checkpoint object, None, or an error marker to broadcast."""
    if path is not None:
        found: _checkpoint.Where | None = _checkpoint.as_where(str(path))
    elif folder is not None:
        found = _checkpoint.latest(folder, CHECKPOINT_PATTERN)
    else:  # no folder (a remote cluster, no store): this job cannot have saved any
        found = None
    if found is None:
        return None
    try:
        if not _checkpoint.exists(found):
            where = "" if isinstance(found, str) else " (on rank 0's machine)"
            return {"__error__": f"checkpoint {found} does not exist{where}"}
        with _checkpoint.local_copy(found) as local:
            return torch.load(local, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - shown to every rank as one TrainingError
        return {"__error__": f"cannot read checkpoint {found}: {exc}"}


def _load_weights(model: nn.Module, state: dict[str, Any], strict: bool, skip: list[str]) -> None:
    state = {k: v for k, v in state.items() if not _excluded(k, skip)}
    if _is_wrapped(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        opts = StateDictOptions(full_state_dict=True, strict=strict and not skip)
        set_model_state_dict(model, state, options=opts)
        return
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not _excluded(k, skip)]
    if strict and (missing or unexpected):
        raise TrainingError(
            f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}; "
            "pass exclude=[layer, ...] for layers you replaced, or strict=False"
        )


def _interface_of(address: str) -> str | None:
    """The network interface that holds this worker's own address (None if none does)."""
    import ipaddress

    import psutil  # a dependency of distributed
    from distributed.comm import get_address_host

    host = get_address_host(address).strip("[]")
    try:
        ips = {ipaddress.ip_address(host)}
    except ValueError:  # a host name
        ips = {ipaddress.ip_address(a[4][0]) for a in socket.getaddrinfo(host, None)}
    for name, addrs in psutil.net_if_addrs().items():
        for a in addrs:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(a.address.split("%", 1)[0]) in ips:
                    return name
    return None


@contextlib.contextmanager
def _gloo_on_worker_interface(spec: RankSpec, address: str) -> Iterator[None]:
    """Make gloo connect the ranks over the interface of the worker's own address.

    Gloo advertises the address the machine's host name resolves to, and falls back to the
    loopback interface when that is a loopback address (the usual ``127.0.1.1 <host>`` line of
    /etc/hosts): ranks on other hosts then fail with "Connection refused, remote=127.0.0.1".
    The worker's Dask address is the one its peers already reach. ``GLOO_SOCKET_IFNAME`` set
    by the user wins.
    """
    if spec.backend != "gloo" or os.environ.get("GLOO_SOCKET_IFNAME"):
        yield
        return
    try:
        name = _interface_of(address)
    except Exception:  # noqa: BLE001 - then gloo's own choice, as before
        name = None
    if name is None or name == "lo":
        yield
        return
    os.environ["GLOO_SOCKET_IFNAME"] = name  # read when the process group is made
    try:
        yield
    finally:
        os.environ.pop("GLOO_SOCKET_IFNAME", None)


def run_rank(spec: RankSpec, parts: list[pd.DataFrame] | None) -> dict[str, Any]:
    """Task body of one rank: join the process group, run ``train_fn(ctx)``, always leave it."""
    if not _RANK_LOCK.acquire(blocking=False):
        raise TrainingError(
            "another mlkit.train.torch job is running in this worker process; wait for it"
        )
    threads = torch.get_num_threads()
    try:
        from distributed import get_worker

        if spec.checkpoint_dir is not None:
            _checkpoint.use_options(spec.checkpoint_dir, spec.store_options)
        worker = get_worker()
        # One rank per worker: use the worker's threads, not every core of the machine.
        torch.set_num_threads(max(1, int(getattr(worker.state, "nthreads", 1) or 1)))
        shard = None
        if parts is not None:
            shard = pd.concat(parts) if parts else pd.DataFrame()
        if spec.use_cuda:
            torch.cuda.set_device(0)  # Dask-CUDA shows each worker its own GPU as device 0
            device = torch.device("cuda", 0)
        else:
            device = torch.device("cpu")
        with _gloo_on_worker_interface(spec, worker.address):
            dist.init_process_group(
                spec.backend,
                init_method=spec.init_method,
                rank=spec.rank,
                world_size=spec.world_size,
                timeout=timedelta(seconds=spec.timeout),
            )
        try:
            ctx = TrainContext(spec, shard, device)
            try:
                return {"value": spec.train_fn(ctx), "stopped": False}
            except TrainingStopped:
                return {"value": None, "stopped": True}
            except Exception as exc:
                # Returned, not raised: the client turns it into one clear error, and Dask
                # does not log a "Compute Failed" traceback for every rank into the notebook.
                return {"error": RankError(spec.rank, time.time(), _portable(exc))}
        finally:
            dist.destroy_process_group()
    finally:
        torch.set_num_threads(threads)
        release(spec.job_id)
        _RANK_LOCK.release()
