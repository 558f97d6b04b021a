"""Replicas on the Dask cluster's workers (``serve.start(model, on="cluster")``), for the gateway.

The gateway process joins the cluster as a Dask client of its own (the scheduler's address
comes with the route) and places one replica per worker (or as the caller placed them) with
``client.run(mlkit.serve._remote.start_replica, ..., workers=[address])``: the worker process
starts the same replica process a local pool starts (:mod:`mlkit.serve._replica`), bound to the
worker's host, and returns its URL and pid. The lifecycle (start and wait, supervise, scale to
zero and wake, stop) is :class:`~mlkit.serve._pool.Pool`'s; this class supplies its hooks:

- routing, retries and "mark down on a connection error" are :class:`~mlkit.serve._pool.Pool`'s
  (the gateway retries a failed request on another replica: a killed replica costs no request);
- supervision: every ``check_every`` seconds each replica's ``/ping``; a replica that does not
  answer is asked about on its worker (``replica_status``, which also reaps it); one that exited
  is started again on the same worker, one whose worker left the cluster on another worker;
- every call to a replica carries the route's random secret (``x-mlkit-replica-token``):
  replicas on worker hosts listen beyond loopback and refuse anyone else (401 / 403);
- the model folder travels as zip bytes with the first start on each worker (cached there by
  content hash), so workers need no access to the client's tracking store;
- ``stop`` stops every replica of the route on every worker (``stop_replicas``), then leaves
  the cluster. Should the gateway die without stopping them, each replica exits by itself once
  no call has reached it for ``lease_s`` seconds, or with its worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from typing import Any

from mlkit.serve._pool import Pool, Replica

__all__ = ["ClusterPool", "RemoteReplica"]

TOKEN_HEADER = "x-mlkit-replica-token"


class RemoteReplica(Replica):
    """A replica on a worker: the worker's address, the replica's key there, pid and host."""

    def __init__(self, index: int, worker: str, key: str) -> None:
        super().__init__(index)
        self.worker, self.key = worker, key
        self.pid: int | None = None
        self.host = ""
        self.log = ""


class ClusterPool(Pool):
    """Replicas of one model version on Dask workers (see the module docstring).

    Parameters
    ----------
    model_path, replicas, max_batch_rows, max_wait_ms, log_dir
        As :class:`~mlkit.serve._pool.Pool` (``model_path`` is the gateway's local copy).
    scheduler : str
        The Dask scheduler's address.
    placement : list of str
        One worker address per replica.
    lease_s : float
        A replica that no call reached for this long exits by itself.
    """

    spread_ties = True  # one replica per host: no shared caches to keep warm

    def __init__(self, model_path: str, replicas: int, max_batch_rows: int, max_wait_ms: float,
                 log_dir: str, *, scheduler: str, placement: list[str], lease_s: float = 30.0,
                 route_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(model_path, replicas, max_batch_rows, max_wait_ms, log_dir, **kwargs)
        if len(placement) != len(self.replicas):
            raise ValueError(f"{len(self.replicas)} replicas but {len(placement)} placements")
        self.scheduler = scheduler
        self.route_id = route_id or secrets.token_hex(6)
        self.headers = {TOKEN_HEADER: secrets.token_urlsafe(32)}
        self.replica_cfg = {"max_batch_rows": int(max_batch_rows),
                            "max_wait_ms": float(max_wait_ms),
                            "token": self.headers[TOKEN_HEADER], "lease_s": float(lease_s)}
        self.replicas: list[RemoteReplica] = [  # type: ignore[assignment]
            RemoteReplica(i, w, f"{self.route_id}-{i}") for i, w in enumerate(placement)]
        self.dask: Any = None
        self._blob = b""
        self._digest = ""
        self._asked = 0.0  # when the workers were last asked about replicas while waking

    # -- calls into the workers --------------------------------------------------------
    async def _on(self, worker: str, fn: Any, *args: Any, timeout: float = 60.0) -> Any:
        out = await asyncio.wait_for(self.dask.run(fn, *args, workers=[worker]), timeout)
        if worker not in out:
            raise LookupError(f"worker {worker} did not answer")
        return out[worker]

    async def _workers(self) -> list[str]:
        info = await self.dask.scheduler.identity()
        return sorted(info.get("workers", {}))

    async def _spawn_remote(self, rep: RemoteReplica) -> None:
        from mlkit.serve import _remote

        w = rep.worker
        res = await self._on(w, _remote.start_replica, rep.key, self.replica_cfg,
                             self._digest, None)
        if res.get("missing"):  # first replica on this worker: send the model along
            res = await self._on(w, _remote.start_replica, rep.key, self.replica_cfg,
                                 self._digest, self._blob, timeout=300.0)
        rep.url, rep.pid, rep.host = res["url"], res["pid"], res["host"]
        rep.log = res["log"]
        rep.restarts += 1
        rep.healthy, rep.starting = False, True

    async def _respawn(self, rep: RemoteReplica) -> None:
        """Start ``rep`` again: on its worker, or on another if its worker has left."""
        live = await self._workers()
        if rep.worker not in live:
            if not live:
                return  # no worker at all: try again at the next check
            load = {w: sum(r.worker == w for r in self.replicas) for w in live}
            rep.worker = min(live, key=lambda w: (load[w], w))
        await self._spawn_remote(rep)
        if self.on_restart is not None:
            self.on_restart(rep)

    async def _status(self, rep: RemoteReplica) -> dict[str, Any] | None:
        """The replica's state on its worker; None if the worker does not answer."""
        from mlkit.serve import _remote

        try:
            return await self._on(rep.worker, _remote.replica_status, rep.key,
                                  timeout=15.0)
        except Exception:  # noqa: BLE001 - a worker that left or does not answer
            return None

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self, timeout: float = 180.0) -> None:
        """Start every replica on its worker; return once each answers ``/ping``."""
        from distributed import Client

        from mlkit.serve._remote import zip_folder

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.dask = await Client(self.scheduler, asynchronous=True, set_as_default=False,
                                 name="mlkit-gateway", timeout=30)
        try:
            self._blob = await asyncio.to_thread(zip_folder, self.model_path)
            self._digest = hashlib.sha256(self._blob).hexdigest()[:32]
            live = await self._workers()
            if not live:
                raise RuntimeError(f"the cluster at {self.scheduler} has no workers")
            for i, rep in enumerate(self.replicas):  # placed on a worker that has left since
                if rep.worker not in live:
                    rep.worker = live[i % len(live)]
            await self._spawn_all()
            await self._wait_healthy(timeout)
        except BaseException:
            await self.stop()
            raise
        for rep in self.replicas:
            rep.restarts = 0
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    # -- Pool's hooks, for replicas on workers -------------------------------------------
    async def _died(self, rep: RemoteReplica) -> str | None:  # type: ignore[override]
        st = await self._status(rep)
        if st is None or st["alive"]:
            return None
        tail = st.get("tail", "")
        if "address already in use" in tail.lower() and rep.restarts < 3:
            await self._spawn_remote(rep)  # lost a port race on its host
            return None
        return (f"replica {rep.index} on worker {rep.worker} exited with code {st.get('code')}; "
                f"last lines of its log ({rep.log} on that host):\n{tail}")

    async def _check(self, rep: RemoteReplica) -> None:  # type: ignore[override]
        if await self._ping(rep, timeout=2.0):
            rep.healthy, rep.starting = True, False
            return
        rep.healthy = False
        st = await self._status(rep)
        if st is None or not st["alive"]:  # exited (reaped now) or its worker is gone
            await self._respawn(rep)

    async def _spawn_all(self) -> None:
        await asyncio.gather(*(self._spawn_remote(r) for r in self.replicas))
        self._asked = time.monotonic()

    async def _revive_waking(self) -> None:
        # Asking a worker is a round trip through the scheduler: every 2 s, not every 50 ms.
        if time.monotonic() - self._asked < 2.0:
            return
        self._asked = time.monotonic()
        for rep in self.replicas:
            st = await self._status(rep)
            if not rep.healthy and st is not None and not st["alive"]:
                await self._respawn(rep)

    async def _stop_all(self, timeout: float) -> None:
        from mlkit.serve import _remote

        if self.dask is None:
            return
        with contextlib.suppress(Exception):
            # every worker, not only the placements: a replica may have moved
            await asyncio.wait_for(
                self.dask.run(_remote.stop_replicas, self.route_id + "-", timeout),
                timeout + 15)
        for rep in self.replicas:
            rep.pid = None
            rep.healthy = False

    async def _leave(self) -> None:
        if self.dask is not None:
            with contextlib.suppress(Exception):
                await self.dask.close()
            self.dask = None

    def _where(self, rep: RemoteReplica) -> dict[str, Any]:  # type: ignore[override]
        return {"pid": rep.pid, "host": rep.host, "worker": rep.worker}
