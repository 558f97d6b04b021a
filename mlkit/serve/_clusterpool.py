"""Replicas on the Dask cluster's workers (``serve.start(model, on="cluster")``), for the gateway.

The gateway process joins the cluster as a Dask client of its own (the scheduler's address
comes with the route) and places one replica per worker (or as the caller placed them) with
``client.run(mlkit.serve._remote.start_replica, ..., workers=[address])``: the worker process
starts the same replica process a local pool starts (:mod:`mlkit.serve._replica`), bound to the
worker's host, and returns its URL and pid. From then on the pool is the local pool's twin:

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
import sys
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
        import httpx
        from distributed import Client

        from mlkit.serve._remote import zip_folder

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._client = httpx.AsyncClient(trust_env=False)
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
            await asyncio.gather(*(self._spawn_remote(r) for r in self.replicas))
            deadline = time.monotonic() + timeout
            while not all(r.healthy for r in self.replicas):
                for rep in self.replicas:
                    if rep.healthy:
                        continue
                    if await self._ping(rep, timeout=2.0):
                        rep.healthy, rep.starting = True, False
                        continue
                    st = await self._status(rep)
                    if st is not None and not st["alive"]:
                        tail = st.get("tail", "")
                        if "address already in use" in tail.lower() and rep.restarts < 3:
                            await self._spawn_remote(rep)  # lost a port race on its host
                            continue
                        raise RuntimeError(
                            f"replica {rep.index} on worker {rep.worker} exited with code "
                            f"{st.get('code')}; last lines of its log "
                            f"({rep.log} on that host):\n{tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replicas on the cluster did not answer /ping within "
                                       f"{timeout:g} s")
                await asyncio.sleep(0.2)
        except BaseException:
            await self.stop()
            raise
        for rep in self.replicas:
            rep.restarts = 0
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.check_every)
            if self.scaled_to_zero:
                continue
            if (self.idle_stop_s is not None and self._waking is None
                    and time.monotonic() - self.last_request > self.idle_stop_s
                    and not any(r.inflight for r in self.replicas)):
                await self._scale_to_zero()
                continue
            for rep in self.replicas:
                if self._closing:
                    return
                try:
                    await self._check(rep)
                except Exception as exc:  # noqa: BLE001 - one bad check must not end supervision
                    print(f"mlkit gateway: checking replica {rep.index} failed: {exc!r}",
                          file=sys.stderr, flush=True)

    async def _check(self, rep: RemoteReplica) -> None:
        if await self._ping(rep, timeout=2.0):
            rep.healthy, rep.starting = True, False
            return
        rep.healthy = False
        st = await self._status(rep)
        if st is None or not st["alive"]:  # exited (reaped now) or its worker is gone
            await self._respawn(rep)

    async def _stop_remote(self, timeout: float) -> None:
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

    async def _scale_to_zero(self) -> None:
        self.scaled_to_zero = True
        for rep in self.replicas:
            rep.healthy = False
        await self._stop_remote(10.0)

    async def _wake(self) -> None:
        t0 = time.monotonic()
        # All at once: the waking request waits for the first replica, not for each in turn.
        await asyncio.gather(*(self._spawn_remote(r) for r in self.replicas))
        for rep in self.replicas:
            rep.restarts -= 1  # a cold start is not a crash
        checked = time.monotonic()
        while not any(r.healthy for r in self.replicas):
            for rep in self.replicas:
                if await self._ping(rep, timeout=2.0):
                    rep.healthy, rep.starting = True, False
            if time.monotonic() - checked > 2.0:  # one that died while starting: again
                checked = time.monotonic()
                for rep in self.replicas:
                    st = await self._status(rep)
                    if not rep.healthy and st is not None and not st["alive"]:
                        await self._respawn(rep)
            await asyncio.sleep(0.05)
        self.cold_starts.append(time.monotonic() - t0)
        self.scaled_to_zero = False
        self.last_request = time.monotonic()

    def describe(self) -> list[dict[str, Any]]:
        return [{"replica": r.index, "url": r.url, "healthy": r.healthy, "inflight": r.inflight,
                 "restarts": max(r.restarts, 0), "scaled_to_zero": self.scaled_to_zero,
                 "pid": r.pid, "host": r.host, "worker": r.worker}
                for r in self.replicas]

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop every replica of this route on every worker, then leave the cluster."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        await self._stop_remote(timeout)
        if self.dask is not None:
            with contextlib.suppress(Exception):
                await self.dask.close()
            self.dask = None
        if self._client is not None:
            await self._client.aclose()
