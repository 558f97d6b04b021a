"""The local cluster: a Dask scheduler and nanny/worker processes that the kernel's Interrupt
cannot reach, whose output goes to log files instead of the notebook.

Why not ``distributed.LocalCluster``: jupyter_client interrupts a kernel with
``os.killpg(pgid, SIGINT)``, so every process in the kernel's process group gets SIGINT, and a
LocalCluster's worker processes are in that group: Interrupt killed them. Their stdout/stderr is
the kernel's too, so xgboost's collective lines and Dask's INFO logs landed in the notebook.

Here the cluster object stays in the kernel (a :class:`distributed.SpecCluster`, so ``scale``,
``workers``, ``close`` and the widgets keep working) while the scheduler and every nanny run as
subprocesses started the way distributed's own ``SubprocessCluster`` starts them (``dask spec``),
but in a session of their own (``start_new_session``), with output appended to
``<mlkit home>/cluster-logs/<cluster id>/`` and a watchdog (:mod:`mlkit.cluster._child`) that
ends them when the kernel is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import dask.config
from distributed.deploy.spec import ProcessInterface, SpecCluster

from mlkit import config
from mlkit.exceptions import ClusterError

__all__ = ["IsolatedCluster", "log_root"]

logger = logging.getLogger(__name__)

# Seconds a nanny / the scheduler gets to close after SIGTERM before its group is killed.
_GRACE_SECONDS = 5.0
# Keep the log folders of this many past clusters (older ones are removed at start).
_KEEP_LOG_FOLDERS = 10
_PRUNE_IDLE_SECONDS = 24 * 3600


def log_root() -> Path:
    """``<mlkit home>/cluster-logs``: one sub-folder per local cluster started."""
    return config.home("cluster-logs")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The kernel's Dask config (dask.config.set(...) included) reaches the processes, as it
    # reached LocalCluster's workers through the nanny.
    env["DASK_INTERNAL_INHERIT_CONFIG"] = dask.config.serialize(dask.config.global_config)
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the file as they happen
    # Arrow buffers (Parquet reads and writes, pandas' str columns) from the C allocator, which
    # distributed's MALLOC_TRIM_THRESHOLD_ makes hand freed memory back to the OS: pyarrow's
    # default mimalloc pool kept 40-50 MB per worker after each partition, which the memory
    # limit counts as the worker's own (measured: a worker streaming Parquet partitions at a
    # 400 MB limit peaked ~50 MB lower). A user's own choice wins.
    env.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    # The kernel's import path (the notebook's folder, pytest's rootdir ...), so functions
    # pickled by reference import on the workers as they did with spawned LocalCluster workers.
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    extra = [
        p
        for p in (os.path.abspath(e) for e in sys.path if e)
        if os.path.isdir(p) and not any(os.path.realpath(p).startswith(x) for x in prefixes)
    ]
    if os.environ.get("PYTHONPATH"):
        extra.append(os.environ["PYTHONPATH"])
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(extra))
    return env


def _tail(path: Path, n: int = 20) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


class _IsolatedProcess(ProcessInterface):
    """One ``dask spec`` subprocess in its own session, output appended to ``log_path``."""

    def __init__(self, log_path: Path) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = Path(log_path)
        super().__init__()

    async def _spawn(self, spec_args: list[str]) -> None:
        cmd = [sys.executable, "-m", "mlkit.cluster._child", str(os.getpid()), "spec", *spec_args]
        with open(self.log_path, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=_child_env(),
                # Its own session and process group: the kernel's SIGINT never reaches it.
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def close(self) -> None:
        p = self.process
        if p is not None:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)  # dask spec closes its server cleanly
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(p.wait(), _GRACE_SECONDS)
            # Whatever is left of its group (a nanny's worker process) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            await p.wait()
        await super().close()


class IsolatedScheduler(_IsolatedProcess):
    """The scheduler, in a subprocess; ready once it has written its scheduler file."""

    def __init__(self, log_dir: str, scheduler_kwargs: dict[str, Any], timeout: float = 60.0):
        folder = Path(log_dir)
        super().__init__(folder / "scheduler.log")
        self.scheduler_file = folder / "scheduler.json"
        self.scheduler_kwargs = {**scheduler_kwargs, "scheduler_file": str(self.scheduler_file)}
        self.timeout = timeout
        self.address: str | None = None

    async def start(self) -> None:
        spec = {"cls": "distributed.Scheduler", "opts": self.scheduler_kwargs}
        await self._spawn(["--spec", json.dumps(spec)])
        assert self.process is not None
        deadline = time.monotonic() + self.timeout
        while self.process.returncode is None and time.monotonic() < deadline:
            try:
                self.address = json.loads(self.scheduler_file.read_text())["address"]
                break
            except (OSError, ValueError, KeyError):  # not written (completely) yet
                await asyncio.sleep(0.05)
        else:
            await self.close()
            why = (
                f"did not start within {self.timeout:.0f}s"
                if self.process is None or self.process.returncode is None
                else "exited"
            )
            raise ClusterError(
                f"the scheduler {why}; its log ({self.log_path}) ends with:\n{_tail(self.log_path)}"
            )
        await super().start()


class IsolatedNanny(_IsolatedProcess):
    """One nanny (and the worker process it keeps alive), in a subprocess."""

    def __init__(
        self, scheduler: str, name: Any = None, *, log_dir: str, worker_kwargs: dict[str, Any]
    ) -> None:
        self.name = name
        super().__init__(Path(log_dir) / f"worker-{name}.log")
        self.scheduler = scheduler
        self.worker_kwargs = {**worker_kwargs, "name": name}

    async def start(self) -> None:
        spec = {"cls": "distributed.Nanny", "opts": self.worker_kwargs}
        await self._spawn([self.scheduler, "--spec", json.dumps(spec)])
        await super().start()


class IsolatedCluster(SpecCluster):
    """A local Dask cluster whose scheduler and workers are interrupt-safe subprocesses.

    Takes the keyword arguments of ``distributed.LocalCluster`` that mlkit uses; ``**options``
    go to every nanny (they must be JSON-serialisable: they travel on a command line).

    Examples
    --------
    >>> from mlkit.cluster._local import IsolatedCluster
    >>> c = IsolatedCluster(n_workers=2, threads_per_worker=1)     # doctest: +SKIP
    >>> sorted(c.workers)                                          # doctest: +SKIP
    [0, 1]
    >>> c.close()                                                  # doctest: +SKIP
    """

    def __init__(
        self,
        n_workers: int = 1,
        threads_per_worker: int = 1,
        memory_limit: str | int | None = "auto",
        processes: bool = True,
        host: str = "127.0.0.1",
        scheduler_port: int = 0,
        dashboard_address: str | None = None,
        local_directory: str | None = None,
        silence_logs: int = logging.ERROR,
        asynchronous: bool = False,
        loop: Any = None,
        **options: Any,
    ) -> None:
        if not processes:
            raise ClusterError(
                "IsolatedCluster always runs worker processes; use distributed.LocalCluster "
                "(cluster='distributed.LocalCluster') for threads in the kernel"
            )
        from distributed.worker_memory import parse_memory_limit

        self.cluster_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.log_dir = log_root() / self.cluster_id
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _prune_logs(self.log_dir)
        if memory_limit == "auto" or memory_limit is None:
            # LocalCluster's rule: the machine's memory shared among the workers.
            total_threads = n_workers * threads_per_worker
            memory_limit = parse_memory_limit(
                "auto", threads_per_worker, max(total_threads, 1), logger=logger
            )
        scheduler_kwargs = {
            "host": host,
            "port": scheduler_port,
            "dashboard": dashboard_address is not None,
            "dashboard_address": dashboard_address,
        }
        worker_kwargs: dict[str, Any] = {
            "host": host,
            "nthreads": threads_per_worker,
            "memory_limit": memory_limit,
            "dashboard": False,
            **({"local_directory": local_directory} if local_directory else {}),
            **options,
        }
        try:
            json.dumps(worker_kwargs)
        except TypeError as exc:
            raise ClusterError(
                f"worker options must be JSON values (they go to worker processes on a command "
                f"line): {exc}"
            ) from None
        worker = {
            "cls": IsolatedNanny,
            "options": {"log_dir": str(self.log_dir), "worker_kwargs": worker_kwargs},
        }
        # Worker names are never reused (see new_worker_spec); the next one is this.
        self._next_name = n_workers
        super().__init__(
            workers={i: worker for i in range(n_workers)},
            scheduler={
                "cls": IsolatedScheduler,
                "options": {"log_dir": str(self.log_dir), "scheduler_kwargs": scheduler_kwargs},
            },
            worker=worker,
            asynchronous=asynchronous,
            loop=loop,
            silence_logs=silence_logs,
            name="mlkit-local",
        )

    def new_worker_spec(self) -> dict[Any, Any]:
        """The next worker's spec, under a name no worker of this cluster has had.

        distributed's ``SpecCluster`` reuses the lowest free name (scale 2 -> 1 -> 2 starts a
        new worker ``1``), and ``lost-worker-timeout`` (15 s) after a worker leaves the scheduler
        it closes whatever worker now holds that *name* unless one by that name has registered
        again. A worker started by a scale-down-then-up within those 15 s was closed before it
        joined, and each one after it too: ``scale(2)`` then waited forever (reproduced: the
        third 1 -> 2 cycle hung; the scaling report hit it in CI). A fresh name per worker
        makes the late check find nothing.
        """
        name = self._next_name
        while name in self.worker_spec or name in self.workers:
            name += 1
        self._next_name = name + 1
        return {name: self.new_spec}

    def log_files(self) -> dict[str, Path]:
        """Log file per process: ``"scheduler"`` and one per worker name (``"0"``, ``"1"`` ...)."""
        files = {"scheduler": self.log_dir / "scheduler.log"}
        for path in sorted(self.log_dir.glob("worker-*.log")):
            files[path.stem.removeprefix("worker-")] = path
        return files

    def pids(self) -> list[int]:
        """Pids of every process this cluster started (schedulers, nannies, workers)."""
        import psutil

        out: list[int] = []
        for proc in [self.scheduler, *self.workers.values()]:
            pid = getattr(proc, "pid", None)
            if pid is None:
                continue
            try:
                p = psutil.Process(pid)
                out += [p.pid, *(c.pid for c in p.children(recursive=True))]
            except psutil.NoSuchProcess:
                continue
        return out

    def exited(self) -> list[tuple[str, Path]]:
        """Processes that ended on their own (a nanny that could not start, say)."""
        gone = []
        for name, proc in [("scheduler", self.scheduler), *self.workers.items()]:
            p = getattr(proc, "process", None)
            if p is not None and p.returncode is not None:
                gone.append((str(name), proc.log_path))
        return gone


def _prune_logs(current: Path) -> None:
    """Remove log folders beyond the newest few, but only ones idle for a day (a cluster of
    another kernel sharing this home may still be writing to an old folder)."""

    def last_write(folder: Path) -> float:
        return max([f.stat().st_mtime for f in folder.iterdir()] or [folder.stat().st_mtime])

    with contextlib.suppress(OSError):
        folders = sorted(
            (p for p in current.parent.iterdir() if p.is_dir() and p != current), key=last_write
        )
        idle = time.time() - _PRUNE_IDLE_SECONDS
        for old in folders[: max(0, len(folders) - _KEEP_LOG_FOLDERS + 1)]:
            if last_write(old) > idle:
                continue
            for f in old.iterdir():
                with contextlib.suppress(OSError):
                    f.unlink()
            with contextlib.suppress(OSError):
                old.rmdir()
