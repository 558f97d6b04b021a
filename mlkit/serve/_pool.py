"""A pool of scoring replicas for one model version, supervised by the gateway process.

Each replica is ``python -m uvicorn --factory mlkit.serve._replica:create_app`` on a loopback
port, a child of the gateway and in the gateway's process group (so stopping the gateway's group
stops them all, and a replica whose gateway died exits by itself, see ``_replica``).

Supervision: every ``check_every`` seconds the pool looks at each replica's process and
``/ping``. A replica that exited (crash, OOM kill, SIGKILL) is marked down at once and started
again on a fresh port; it takes traffic again once its ``/ping`` answers. The gateway also marks
a replica down the moment a request to it fails at the connection level, and retries that
request on another replica: a replica killed under load costs no client request.

Routing picks the healthy replica with the fewest requests in flight (ties: round robin).

Scale to zero (``idle_stop_s``): when no request has arrived for that long, the pool stops every
replica (SIGTERM, graceful) and stays at zero; the next request starts them again
(:meth:`Pool.wake`) and waits for the first one to answer ``/ping``: that wait is the cold
start, measured and exported by the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlkit import _net

__all__ = ["Pool", "Replica"]


class Replica:
    """One replica process: its port, health and load as the gateway sees them."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.label = str(index)
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.healthy = False
        self.inflight = 0
        self.restarts = -1  # the first start is not a restart
        self.starting = False
        self.upstream: Any = None  # keep-alive connections to it (mlkit.serve._forward)

    def connection(self) -> Any:
        """The keep-alive connections to this replica (requests and health checks share them),
        new when it restarted on another port."""
        from mlkit.serve._forward import Upstream

        upstream = self.upstream
        if upstream is None or upstream.url != self.url:
            if upstream is not None:
                upstream.close()
            upstream = self.upstream = Upstream.from_url(self.url)
        return upstream

    def close_connections(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None


class Pool:
    """Replicas of one model version.

    Parameters
    ----------
    model_path : str
        Local MLflow model folder every replica loads.
    replicas : int
        How many processes.
    max_batch_rows, max_wait_ms : int, float
        Batching settings handed to each replica.
    log_dir : str
        Where ``replica-<i>.log`` files go.
    on_restart : callable, optional
        Called with the replica after each restart (metrics).
    """

    def __init__(self, model_path: str, replicas: int, max_batch_rows: int, max_wait_ms: float,
                 log_dir: str, host: str = "127.0.0.1", check_every: float = 0.5,
                 on_restart: Any = None, idle_stop_s: float | None = None) -> None:
        self.model_path = model_path
        self.host = host
        self.log_dir = Path(log_dir)
        self.check_every = check_every
        self.on_restart = on_restart
        self.env = os.environ.copy()
        self.env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + self.env.get("PATH", "")
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env["MLKIT_REPLICA_CONFIG"] = json.dumps({
            "model_path": model_path, "max_batch_rows": int(max_batch_rows),
            "max_wait_ms": float(max_wait_ms),
        })
        self.replicas = [Replica(i) for i in range(int(replicas))]
        self._rr = 0
        self._task: asyncio.Task | None = None
        self._closing = False
        self.idle_stop_s = idle_stop_s
        self.last_request = time.monotonic()
        self.scaled_to_zero = False
        self._waking: asyncio.Task | None = None
        self.cold_starts: list[float] = []
        self.headers: dict[str, str] = {}  # sent with every call to a replica (cluster: secret)

    # -- processes ---------------------------------------------------------------------
    def _spawn(self, rep: Replica) -> None:
        port = _net.free_port(self.host)
        rep.url = f"http://{self.host}:{port}"
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "mlkit.serve._replica:create_app",
               "--host", self.host, "--port", str(port), "--no-access-log",
               "--timeout-graceful-shutdown", "5"]
        log = open(self.log_dir / f"replica-{rep.index}.log", "ab")  # noqa: SIM115 - child owns
        try:
            log.write(f"=== mlkit: replica {rep.index} on port {port}\n".encode())
            log.flush()
            rep.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=self.env)
        finally:
            log.close()
        rep.restarts += 1
        rep.healthy = False
        rep.starting = True

    async def _ping(self, rep: Replica, timeout: float = 5.0) -> bool:
        # Over the replica's own keep-alive connections (mlkit.serve._forward), not httpx: two
        # replicas checked every 0.5 s cost the idle gateway 8 ms of CPU per second through
        # httpx, taken from the cores the replicas score on.
        from mlkit.serve._forward import ForwardError

        if not rep.url:
            return False
        headers = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        try:
            status, _, _ = await rep.connection().get(b"/ping", headers, timeout)
        except (ForwardError, asyncio.TimeoutError, OSError):  # 3.10: not TimeoutError
            return False
        return status == 200

    async def start(self, timeout: float = 180.0) -> None:
        """Start every replica; return once each answers ``/ping`` (or raise with its log)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for rep in self.replicas:
            self._spawn(rep)
        try:
            await self._wait_healthy(timeout)
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    # -- what a pool of processes elsewhere (ClusterPool) does its own way ----------------
    async def _died(self, rep: Replica) -> str | None:
        """While starting: why ``rep`` cannot come up (None while it still may)."""
        assert rep.proc is not None
        if rep.proc.poll() is None:
            return None
        log = self.log_dir / f"replica-{rep.index}.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        if "address already in use" in tail.lower() and rep.restarts < 3:
            self._spawn(rep)  # lost a port race: try another port
            return None
        return (f"replica {rep.index} exited with code {rep.proc.returncode}; last lines of "
                f"{log}:\n{tail}")

    async def _check(self, rep: Replica) -> None:
        """One supervision round for ``rep``: restart it if it exited, else ask ``/ping``."""
        if rep.proc is None:
            return
        if rep.proc.poll() is not None:
            rep.healthy = False
            with contextlib.suppress(Exception):
                rep.proc.wait(timeout=0)
            self._spawn(rep)  # crashed or killed: start it again
            if self.on_restart is not None:
                self.on_restart(rep)
            return
        if await self._ping(rep):
            rep.healthy, rep.starting = True, False
        elif not rep.starting:
            rep.healthy = False

    async def _spawn_all(self) -> None:
        for rep in self.replicas:
            self._spawn(rep)

    async def _revive_waking(self) -> None:
        """While waking from zero: start again a replica that died while starting."""
        for rep in self.replicas:
            if rep.proc is not None and rep.proc.poll() is not None:
                self._spawn(rep)

    async def _stop_all(self, timeout: float) -> None:
        """SIGTERM every replica, SIGKILL what is left after ``timeout``."""
        procs = [r.proc for r in self.replicas if r.proc is not None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        deadline = time.monotonic() + timeout
        for p in procs:
            while p.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if p.poll() is None:
                p.kill()
                p.wait()
        for rep in self.replicas:
            rep.proc = None

    async def _leave(self) -> None:
        """After the replicas stopped: let go of what the pool holds besides them."""

    def _where(self, rep: Replica) -> dict[str, Any]:
        return {"pid": rep.proc.pid if rep.proc is not None else None, "host": self.host,
                "worker": None}

    # -- the lifecycle both kinds share ------------------------------------------------
    async def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(r.healthy for r in self.replicas):
            for rep in self.replicas:
                if rep.healthy:
                    continue
                if await self._ping(rep, timeout=2.0):
                    rep.healthy, rep.starting = True, False
                    continue
                error = await self._died(rep)
                if error is not None:
                    raise RuntimeError(error)
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas did not answer /ping within {timeout:g} s")
            await asyncio.sleep(0.1)

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

    # -- scale to zero -----------------------------------------------------------------
    async def _scale_to_zero(self) -> None:
        self.scaled_to_zero = True
        for rep in self.replicas:
            rep.healthy = False
        await self._stop_all(10.0)

    async def _wake(self) -> None:
        t0 = time.monotonic()
        # All at once: the waking request waits for the first replica, not for each in turn.
        await self._spawn_all()
        for rep in self.replicas:
            rep.restarts -= 1  # a cold start is not a crash
        while not any(r.healthy for r in self.replicas):
            for rep in self.replicas:
                if await self._ping(rep, timeout=2.0):
                    rep.healthy, rep.starting = True, False
            if not any(r.healthy for r in self.replicas):
                await self._revive_waking()
            await asyncio.sleep(0.05)
        self.cold_starts.append(time.monotonic() - t0)
        self.scaled_to_zero = False
        self.last_request = time.monotonic()

    def wake(self) -> asyncio.Task | None:
        """Start the replicas of a pool scaled to zero (once, however many requests wait)."""
        self.last_request = time.monotonic()
        if not self.scaled_to_zero:
            return None
        if self._waking is None or self._waking.done():
            self._waking = asyncio.get_running_loop().create_task(self._wake())
            self._waking.add_done_callback(lambda _t: setattr(self, "_waking", None))
        return self._waking

    # -- routing -----------------------------------------------------------------------
    #: Ties between equally loaded replicas: False picks the first one, True takes turns.
    #: Replicas on one machine share its cores and caches: one client's requests kept on one
    #: replica find its code and model warm (taking turns cost 1.6 ms of p50 at one client on
    #: 2 cores, 2.9 vs 1.3 ms over calling a replica directly); a second request in flight
    #: still goes to the other. Replicas on separate hosts (ClusterPool) take turns.
    spread_ties = False

    def pick(self, exclude: frozenset[int] = frozenset()) -> Replica | None:
        """The healthy replica with the fewest requests in flight (None if none is up).

        Examples
        --------
        >>> pool = Pool("m", 2, 8, 1.0, "/tmp")
        >>> for r in pool.replicas:
        ...     r.healthy = True
        >>> [pool.pick().index for _ in range(3)]      # idle: the same, warm replica
        [0, 0, 0]
        >>> pool.replicas[0].inflight = 1
        >>> pool.pick().index                          # busy: the next least loaded one
        1
        >>> pool.pick(exclude=frozenset({1})).index    # a retry avoids the replica that failed
        0
        """
        best = None
        n = len(self.replicas)
        start = self._rr if self.spread_ties else 0
        for k in range(n):
            rep = self.replicas[(start + k) % n]
            if rep.healthy and rep.index not in exclude and (
                    best is None or rep.inflight < best.inflight):
                best = rep
        self._rr = (self._rr + 1) % n
        return best

    def mark_down(self, rep: Replica) -> None:
        """A request to ``rep`` failed at the connection level: no traffic until /ping is ok."""
        rep.healthy = False

    @property
    def healthy(self) -> int:
        return sum(r.healthy for r in self.replicas)

    def describe(self) -> list[dict[str, Any]]:
        return [{"replica": r.index, "url": r.url, "healthy": r.healthy, "inflight": r.inflight,
                 "restarts": max(r.restarts, 0), "scaled_to_zero": self.scaled_to_zero,
                 **self._where(r)} for r in self.replicas]

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after ``timeout``) and what the pool holds."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        await self._stop_all(timeout)
        await self._leave()
        for rep in self.replicas:
            rep.close_connections()
