"""distributed's SSHCluster through ``up(cluster="distributed.SSHCluster", hosts=[...])``.

SSHCluster starts the scheduler on ``hosts[0]`` and one worker (Nanny) per further host over
SSH (asyncssh). This module turns mlkit's options into its keywords before anything starts:
``workers`` / ``threads_per_worker`` / ``memory_limit`` become ``worker_options`` (as top-level
keywords SSHCluster would silently route them to its deprecated old implementation), the
scheduler listens on the address the client reached it by (``hosts[0]``) rather than on every
interface, and mlkit's dashboard choice applies to it. The number of workers is fixed by the
hosts list, so that number is what ``up`` waits for. ``down`` waits until the remote Dask
processes have exited (:func:`wait_stopped`): distributed's close returns before they do.

Examples
--------
>>> kw, n = options(["10.0.0.1", "10.0.0.2", "10.0.0.3"], threads_per_worker=2, dashboard=False)
>>> kw["worker_options"], kw["scheduler_options"], n
({'nthreads': 2}, {'host': '10.0.0.1', 'dashboard': False}, 2)
"""

from __future__ import annotations

from typing import Any

from mlkit import _args
from mlkit.exceptions import ConfigArgumentError, ConfigError

__all__ = ["HINT", "PATHS", "is_ssh", "options", "is_ssh_deploy", "remote_processes",
           "wait_stopped"]

# The names distributed exports SSHCluster under.
PATHS = frozenset({
    "distributed.SSHCluster", "dask.distributed.SSHCluster", "distributed.deploy.SSHCluster",
    "distributed.deploy.ssh.SSHCluster",
})
# Keywords of the deprecated SSHCluster API: SSHCluster hands any of them to the old one.
_OLD = ("scheduler_addr", "scheduler_port", "worker_addrs", "nprocs", "ssh_username", "ssh_port",
        "ssh_private_key", "nohost", "logdir", "worker_port", "nanny_port", "remote_dask_worker")
# What to check when SSHCluster cannot start (appended to the error).
HINT = (". Check that every host runs sshd and answers `ssh HOST` from here without a prompt: "
        "its key in ~/.ssh/known_hosts, yours in its authorized_keys (or pass connect_options="
        "{'username': ..., 'client_keys': [...], 'known_hosts': ...}), and that remote_python "
        "(default: this Python's path) exists there with the same packages")
# Top-level keywords a user may reasonably pass that belong to every worker.
_PER_WORKER = {"nthreads": "nthreads", "n_workers": "n_workers", "memory_limit": "memory_limit"}


def is_ssh(cluster: str | None) -> bool:
    """True for the dotted paths of distributed's SSHCluster."""
    return cluster in PATHS


def _hosts(value: Any) -> list[str]:
    if isinstance(value, str):  # `-o hosts=a,b,c` in a magic, or a user's comma list
        value = [h.strip() for h in value.split(",") if h.strip()]
    if (not isinstance(value, (list, tuple)) or len(value) < 2
            or not all(isinstance(h, str) and h.strip() for h in value)):
        raise ConfigError(
            f"SSHCluster needs hosts=[SCHEDULER_HOST, WORKER_HOST, ...] (at least two host names "
            f"or addresses: the first runs the scheduler, every other one a worker; repeat the "
            f"first to put a worker beside the scheduler), but got hosts={value!r}"
        )
    return [h.strip() for h in value]


def _dict(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a dict of keyword arguments, but got {value!r}")
    return dict(value)


def options(
    hosts: Any = None,
    *,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | int | None = None,
    dashboard: bool = True,
    **kwargs: Any,
) -> tuple[dict[str, Any], int]:
    """SSHCluster's keywords for mlkit's options, and the number of workers it will start.

    Raises :class:`~mlkit.exceptions.ConfigError` naming the value for a hosts list that cannot
    work, a ``workers`` count the hosts cannot hold, or a keyword of SSHCluster's old API.
    """
    host_list = _hosts(hosts)
    old = sorted(k for k in kwargs if k in _OLD)
    if old:
        raise ConfigError(
            f"{', '.join(old)} belong to the removed SSHCluster API: pass hosts=[...] (scheduler "
            "first), connect_options={'username': ..., 'port': ..., 'client_keys': [...]} and "
            "worker_options / scheduler_options instead"
        )
    worker_options = _dict("worker_options", kwargs.pop("worker_options", None))
    scheduler_options = _dict("scheduler_options", kwargs.pop("scheduler_options", None))
    for key, target in _PER_WORKER.items():
        if key in kwargs:
            worker_options.setdefault(target, kwargs.pop(key))
    if threads_per_worker is not None:
        worker_options.setdefault("nthreads", threads_per_worker)
    if memory_limit is not None:
        worker_options.setdefault("memory_limit", memory_limit)
    worker_hosts = len(host_list) - 1
    if workers is not None:
        if workers % worker_hosts:
            raise ConfigError(
                f"workers={workers} cannot be spread over the {worker_hosts} worker host(s) of "
                f"hosts={host_list!r} (SSHCluster starts the same number on each): use a "
                f"multiple of {worker_hosts}, or leave workers unset for one per host"
            )
        worker_options.setdefault("n_workers", workers // worker_hosts)
    per_host = worker_options.get("n_workers", 1)
    _args.positive_int("n_workers", per_host, error=ConfigArgumentError,
                       what_to_do="it counts workers per host")
    # The client reached the scheduler's host by this name: the workers can too. Listening on
    # every interface (Dask's default) would also expose it on networks nobody asked for.
    if "interface" not in scheduler_options:
        scheduler_options.setdefault("host", host_list[0])
    if not dashboard:
        scheduler_options.setdefault("dashboard", False)
    elif "dashboard_address" not in scheduler_options:
        scheduler_options.setdefault("dashboard_address", f"{host_list[0]}:0")
    out = {"hosts": host_list, "worker_options": worker_options,
           "scheduler_options": scheduler_options, **kwargs}
    return out, worker_hosts * per_host


# -- stopping: SSHCluster.close() returns before the remote processes have exited -------------
# distributed closes an SSH cluster by asking the scheduler to close the workers and by closing
# each SSH connection; the remote Dask processes then exit on their own, some time later. A
# user who calls down() and then starts the next cluster on the same hosts (or whose test
# checks the hosts) must find nothing left, so down() remembers the pids first and waits, over
# SSH with the cluster's own connect options, until every one of them has exited.
STOP_WAIT_S = 30.0
_ALIVE = 'for p in {pids}; do kill -0 "$p" 2>/dev/null && echo "$p"; done; true'


def is_ssh_deploy(deploy: Any) -> bool:
    """True for the SpecCluster that distributed's SSHCluster built."""
    return getattr(deploy, "name", None) == "SSHCluster" and hasattr(deploy, "scheduler_spec")


def remote_processes(client: Any, deploy: Any) -> dict[str, tuple[dict[str, Any], list[int]]]:
    """Before closing: per SSH host, its connect options and the pids of its Dask processes.

    Best effort: a process that does not answer is left out (it is on its way out already).
    """
    from distributed.comm import get_address_host

    by_ip: dict[str, set[int]] = {}
    if getattr(client, "status", None) != "running":
        return {}  # the scheduler is gone or reconnecting: asking would wait for it

    def add(address: str, pid: Any) -> None:
        if isinstance(pid, int):
            by_ip.setdefault(get_address_host(address).strip("[]"), set()).add(pid)

    for ask in (lambda: {client.scheduler.address: client.run_on_scheduler(_tree)},
                lambda: client.run(_tree), lambda: client.run(_tree, nanny=True)):
        try:
            for address, pids in ask().items():
                for pid in pids:
                    add(address, pid)
        except Exception:  # noqa: BLE001 - a scheduler or nanny already gone: nothing to wait
            pass
    specs = [deploy.scheduler_spec["options"],
             *(w["options"] for w in deploy.worker_spec.values())]
    out: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for opts in specs:
        host = opts["address"]
        if host in out:
            continue
        pids = set().union(*(by_ip.get(ip, set()) for ip in _ips(host)))
        if pids:
            out[host] = (dict(opts.get("connect_options") or {}), sorted(pids))
    return out


def _tree() -> list[int]:
    """Runs in a remote Dask process: its pid and its children's (a nanny's worker, the
    worker's multiprocessing helpers), which must all be gone after down()."""
    import os

    import psutil

    me = psutil.Process()
    return [os.getpid(), *(c.pid for c in me.children(recursive=True))]


def _ips(host: str) -> set[str]:
    import socket

    ips = {host.strip("[]")}
    try:
        ips |= {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        pass
    return ips


def wait_stopped(processes: dict[str, tuple[dict[str, Any], list[int]]],
                 timeout: float = STOP_WAIT_S) -> list[str]:
    """After closing: wait until each host's recorded Dask processes have exited.

    What is still alive after ``timeout`` gets SIGTERM, then SIGKILL 5 s later; the returned
    lines say which (empty when everything exited by itself).
    """
    import asyncio
    import concurrent.futures

    if not processes:
        return []
    # Its own thread and event loop: down() may be called where a loop is running (a kernel).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _wait_all(processes, timeout)).result()


async def _wait_all(processes: dict[str, tuple[dict[str, Any], list[int]]],
                    timeout: float) -> list[str]:
    import asyncio

    results = await asyncio.gather(*(_wait_host(h, o, p, timeout)
                                     for h, (o, p) in processes.items()),
                                   return_exceptions=True)
    lines: list[str] = []
    for host, res in zip(processes, results, strict=True):
        if isinstance(res, BaseException):
            lines.append(f"{host}: could not check that the Dask processes exited ({res!r})")
        elif res:
            lines.append(res)
    return lines


async def _wait_host(host: str, connect_options: dict[str, Any], pids: list[int],
                     timeout: float) -> str:
    import asyncio
    import time

    import asyncssh

    async def alive(conn: Any, left: list[int]) -> list[int]:
        res = await conn.run(_ALIVE.format(pids=" ".join(map(str, left))), check=False)
        return [int(p) for p in str(res.stdout or "").split() if p.isdigit()]

    async with asyncssh.connect(host, **connect_options) as conn:
        deadline = time.monotonic() + timeout
        left = await alive(conn, pids)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            left = await alive(conn, left)
        if not left:
            return ""
        for sig in ("TERM", "KILL"):
            await conn.run(f"kill -{sig} {' '.join(map(str, left))}", check=False)
            end = time.monotonic() + 5
            while left and time.monotonic() < end:
                await asyncio.sleep(0.2)
                left = await alive(conn, left)
            if not left:
                return (f"{host}: Dask processes still running {timeout:g} s after down() were "
                        f"stopped with SIG{sig}")
        return f"{host}: Dask processes {left} survived SIGKILL"
