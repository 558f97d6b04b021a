"""Replica processes on Dask workers: what ``serve.start(..., on="cluster")`` runs on each worker.

The gateway (:mod:`mlkit.serve._clusterpool`) calls these functions with
``client.run(fn, ..., workers=[address])``: they run inside the worker process, which becomes
the parent of the replica (``python -m uvicorn --factory mlkit.serve._replica:create_app``,
the very process a local pool starts). A module-level table keeps the worker's replicas, so a
later call can report on (and reap) or stop them.

- **Address**: the replica binds the host of the worker's own address (``tcp://10.0.0.5:...`` ->
  ``10.0.0.5``), never 127.0.0.1, so the gateway on another host reaches it.
- **Authentication**: a replica there is reachable by others; it refuses any request that lacks
  the route's shared secret (header ``x-mlkit-replica-token``, 401 missing / 403 wrong).
- **The model travels with the call**: the gateway ships the model folder as zip bytes (cached
  on the worker by content hash, in the worker's local directory), so a worker needs no access
  to the client's tracking store or artifact files (a ``file://`` store is client-local).
- **No orphans**: the replica exits when its parent worker exits (``_replica``'s parent watch)
  and when the gateway stops calling it (a lease: no authenticated request for ``lease_s``);
  :func:`stop_replica` SIGTERMs it and SIGKILLs what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlkit import _net

__all__ = ["start_replica", "replica_status", "stop_replica", "stop_replicas", "host_of",
           "zip_folder"]

# key -> (Popen, log path): the replicas this worker process started
_PROCS: dict[str, tuple[subprocess.Popen, Path]] = {}


def host_of(address: str) -> str:
    """The host part of a Dask address.

    Examples
    --------
    >>> host_of("tcp://10.0.0.5:40123"), host_of("tls://[::1]:8786")
    ('10.0.0.5', '::1')
    """
    host = urlparse(address).hostname
    if not host:
        raise ValueError(f"cannot find a host in the worker address {address!r}")
    return host


def zip_folder(folder: str | Path) -> bytes:
    """A model folder as zip bytes (what travels to the workers).

    Examples
    --------
    >>> len(zip_folder(".")) > 0       # doctest: +SKIP
    True
    """
    buf = io.BytesIO()
    root = Path(folder)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


def _worker_dir(dask_worker: Any) -> Path:
    base = Path(getattr(dask_worker, "local_directory", None) or os.getcwd())
    out = base / "mlkit-replicas"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _model_dir(dask_worker: Any, digest: str, blob: bytes | None) -> Path | None:
    folder = _worker_dir(dask_worker) / "models" / digest
    if (folder / "MLmodel").is_file():
        return folder
    if blob is None:
        return None
    tmp = folder.with_name(f"{digest}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        zf.extractall(tmp)
    with contextlib.suppress(OSError):  # another replica of this worker unpacked it first
        tmp.rename(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    return folder


def start_replica(key: str, cfg: dict[str, Any], digest: str, blob: bytes | None = None,
                  dask_worker: Any = None) -> dict[str, Any]:
    """Start one replica in this worker; ``{"missing": True}`` if the model must be sent.

    Parameters
    ----------
    key : str
        The replica's id (route token + index), unique across the cluster.
    cfg : dict
        The replica's settings (``max_batch_rows``, ``max_wait_ms``, ``token``, ``lease_s``);
        ``model_path`` is filled in here.
    digest, blob : str, bytes
        The model's content hash and, when the worker does not hold it yet, its zip bytes.
    """
    model = _model_dir(dask_worker, digest, blob)
    if model is None:
        return {"missing": True}
    old = _PROCS.pop(key, None)
    if old is not None and old[0].poll() is None:  # a restart of a replica still alive
        old[0].kill()
        old[0].wait()
    host = host_of(dask_worker.address) if dask_worker is not None else "127.0.0.1"
    port = _net.free_port(host)
    env = os.environ.copy()
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["MLKIT_REPLICA_CONFIG"] = json.dumps({**cfg, "model_path": str(model)})
    log_path = _worker_dir(dask_worker) / f"replica-{key}.log"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "mlkit.serve._replica:create_app",
           "--host", host, "--port", str(port), "--no-access-log",
           "--timeout-graceful-shutdown", "5"]
    with open(log_path, "ab") as log:
        log.write(f"=== mlkit: replica {key} on {host}:{port}\n".encode())
        log.flush()
        # own session: a Ctrl-C / kernel interrupt sent to the worker's group does not reach it
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    _PROCS[key] = (proc, log_path)
    url_host = f"[{host}]" if ":" in host else host
    return {"url": f"http://{url_host}:{port}", "pid": proc.pid, "host": host,
            "worker_pid": os.getpid(), "log": str(log_path)}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def replica_status(key: str, dask_worker: Any = None) -> dict[str, Any]:
    """Whether replica ``key`` still runs here (an exited one is reaped, its log tail returned)."""
    found = _PROCS.get(key)
    if found is None:
        return {"alive": False, "code": None, "tail": "(not started on this worker)"}
    proc, log = found
    code = proc.poll()
    if code is None:
        return {"alive": True, "pid": proc.pid}
    return {"alive": False, "code": code, "pid": proc.pid, "tail": _tail(log)}


async def stop_replica(key: str, timeout: float = 10.0, dask_worker: Any = None) -> bool:
    """SIGTERM replica ``key`` (graceful), SIGKILL it after ``timeout``; True once it is gone."""
    found = _PROCS.pop(key, None)
    if found is None:
        return True
    proc = found[0]
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # async: the worker's event loop keeps serving meanwhile
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return True


async def stop_replicas(prefix: str, timeout: float = 10.0, dask_worker: Any = None) -> list[int]:
    """Stop every replica here whose key starts with ``prefix``; returns their pids."""
    keys = [k for k in _PROCS if k.startswith(prefix)]
    pids = [_PROCS[k][0].pid for k in keys]
    await asyncio.gather(*(stop_replica(k, timeout) for k in keys))
    return pids
