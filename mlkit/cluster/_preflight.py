"""The connect preflight: what the workers can really reach, found out before the first job.

An address says nothing about disks (a scheduler on 127.0.0.1 may front workers anywhere, and a
folder that exists on every identical machine is still one folder per machine). So the client
writes a nonce file in its mlkit home and asks every worker to read it back; the same for the
shared store (``MLKIT_STORE``), and every worker tries the tracking server over HTTP. From the
answers: which hosts the workers are on, whether they share the client's disk, where state will
go, and what is missing.

:func:`require_reachable` is what the rest of mlkit calls before it hands a worker a path: a path
only the client's disk holds is refused up front with :class:`~mlkit.exceptions.ClientOnlyPathError`
(a folder on a mount every host shares passes: the same nonce test proves it).

Examples
--------
>>> import mlkit
>>> c = mlkit.cluster.connect("tcp://scheduler:8786")     # doctest: +SKIP
>>> c.preflight.shared_disk, c.preflight.hosts             # doctest: +SKIP
(False, ['worker1', 'worker2'])
"""

from __future__ import annotations

import contextlib
import html
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkit import _store, config
from mlkit.exceptions import ClientOnlyPathError

__all__ = [
    "WorkerReach", "Preflight", "run", "local", "require_reachable", "place", "is_remote",
    "tracking_store",
]

_PROBE_TIMEOUT = 5.0  # seconds a worker may spend on the tracking server's /health


@dataclass(frozen=True)
class WorkerReach:
    """What one worker could reach."""

    address: str
    host: str
    sees_client_disk: bool
    sees_store: bool | None = None  # None: no store set
    reaches_tracking: bool | None = None  # None: the tracking URI is not a server
    error: str | None = None


@dataclass(frozen=True)
class Preflight:
    """The result of the preflight, kept on the cluster and shown in its status.

    Examples
    --------
    >>> p = local()
    >>> p.shared_disk, p.missing
    (True, [])
    """

    client_host: str
    home: str
    workers: list[WorkerReach]
    store: str | None
    tracking: str
    seconds: float
    probed: bool = True
    tracking_managed: bool = False  # the tracking server is mlkit's own (serve_tracking)
    _shared_dirs: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def shared_disk(self) -> bool:
        """Every worker read the nonce the client wrote in its mlkit home."""
        return all(w.sees_client_disk for w in self.workers)

    @property
    def remote(self) -> bool:
        """The workers (some of them) cannot see the client's disk."""
        return not self.shared_disk

    @property
    def hosts(self) -> list[str]:
        return sorted({w.host for w in self.workers})

    @property
    def store_shared(self) -> bool | None:
        if self.store is None:
            return None
        return all(bool(w.sees_store) for w in self.workers)

    @property
    def tracking_server(self) -> bool:
        return self.tracking.startswith(("http://", "https://"))

    @property
    def tracking_shared(self) -> bool:
        if not self.remote:
            return True
        return self.tracking_server and all(w.reaches_tracking for w in self.workers)

    def placement(self) -> list[tuple[str, str]]:
        """Where each kind of state goes: ``[(what, where), ...]``."""
        if not self.remote:
            return [("everything", f"the mlkit home {self.home} (shared with the workers)")]
        store = self.store if self.store_shared else None
        if store is None and self.store is None and (artifacts := tracking_store(self)):
            store = (f"{artifacts} (the tracking server's artifacts, for the mlkit home's data "
                     "and checkpoints; set MLKIT_STORE for the rest)")
        store = store or "nowhere yet (set MLKIT_STORE)"
        if not self.tracking_shared:
            tracking = "nowhere the workers reach"
        elif self.tracking_managed:
            tracking = f"{self.tracking} (mlkit's tracking server: mlkit.track.tracking_server())"
        else:
            tracking = self.tracking
        return [
            ("data, checkpoints, logs, job outputs", store),
            ("tracking (runs, models, artifacts)", tracking),
            ("studies (tune)", "the scheduler (DaskStorage, gone when it stops) unless "
                               "storage= names a database"),
            ("client-only paths", "refused (ClientOnlyPathError)"),
        ]

    @property
    def missing(self) -> list[str]:
        """What a remote cluster lacks before state can go anywhere the workers reach."""
        if not self.remote:
            return []
        out = []
        if self.store is None:
            out.append("a shared store: set MLKIT_STORE to an object-store URL (s3://bucket/"
                       "prefix) or a folder every host mounts")
        elif not self.store_shared:
            blind = [w.host for w in self.workers if not w.sees_store]
            out.append(f"the shared store {self.store} is not reachable from "
                       f"{', '.join(sorted(set(blind)))}: check its URL, MLKIT_STORE_OPTIONS "
                       "and the workers' credentials")
        if not self.tracking_server:
            out.append("a tracking server every worker reaches: mlkit.track.serve_tracking() "
                       "(or connect(..., tracking='server')) starts one on this machine; or "
                       "start `mlflow server --backend-store-uri sqlite:///mlflow.db "
                       "--serve-artifacts --host HOST --allowed-hosts HOST,HOST:PORT` yourself "
                       "and set MLFLOW_TRACKING_URI=http://HOST:PORT")
        elif not self.tracking_shared:
            blind = [w.host for w in self.workers if not w.reaches_tracking]
            out.append(f"the tracking server {self.tracking} does not answer from "
                       f"{', '.join(sorted(set(blind)))}: bind it to an address they reach and "
                       "list that address in --allowed-hosts")
        return out

    def lines(self) -> list[str]:
        """The text the cluster's status shows."""
        if not self.probed:
            return []
        where = ", ".join(
            f"{h} ({sum(w.host == h for w in self.workers)} worker"
            f"{'s' if sum(w.host == h for w in self.workers) != 1 else ''})" for h in self.hosts
        )
        out = [
            f"  hosts: {where or 'none'}; client on {self.client_host}",
            f"  workers share the client's disk: {'yes' if self.shared_disk else 'no'} "
            f"(preflight {self.seconds * 1000:.0f} ms)",
        ]
        out += [f"  {what}: {place}" for what, place in self.placement()]
        out += [f"  missing: {m}" for m in self.missing]
        return out

    def _repr_html_(self) -> str:
        if not self.probed:
            return ""
        e = html.escape
        rows = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in self.placement())
        missing = "".join(f"<li>{e(m)}</li>" for m in self.missing)
        return (
            f"<div>hosts: {e(', '.join(self.hosts))}; client on {e(self.client_host)}<br>"
            f"workers share the client's disk: <b>{'yes' if self.shared_disk else 'no'}</b>"
            f"<table><tr><th>state</th><th>goes to</th></tr>{rows}</table>"
            + (f"missing:<ul>{missing}</ul>" if missing else "")
            + "</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_host": self.client_host,
            "hosts": self.hosts,
            "shared_disk": self.shared_disk,
            "store": self.store,
            "store_shared": self.store_shared,
            "tracking": self.tracking,
            "tracking_shared": self.tracking_shared,
            "tracking_managed": self.tracking_managed,
            "placement": self.placement(),
            "missing": self.missing,
            "seconds": self.seconds,
        }


def local() -> Preflight:
    """The answer for a cluster mlkit started on this machine: it shares everything."""
    # Nothing is asked or created here (no tracking store touched): it is called on every
    # data call of a local cluster.
    return Preflight(socket.gethostname(), str(config.home_path()), [], _safe_store(),
                     os.environ.get("MLFLOW_TRACKING_URI", ""), 0.0, probed=False)


def context() -> tuple[str | None, str, str]:
    """What a preflight's answer depends on besides the workers: store, its options, tracking."""
    return _safe_store(), os.environ.get("MLKIT_STORE_OPTIONS", ""), _tracking_uri()


def _safe_store() -> str | None:
    try:
        return _store.url()
    except Exception:
        return None


def _tracking_uri() -> str:
    from mlkit.track._defaults import tracking_uri

    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    try:
        import sys

        if "mlflow" in sys.modules:  # set in this process with mlflow.set_tracking_uri(...)
            return str(sys.modules["mlflow"].get_tracking_uri())
    except Exception:
        pass
    return tracking_uri()


def _probe(nonce_file: str, nonce: str, store_file: str | None, store_options: dict,
           tracking: str | None) -> dict[str, Any]:
    """Runs on each worker: read the client's nonce (disk and store), try the tracking server."""
    out: dict[str, Any] = {"host": socket.gethostname()}
    try:
        with open(nonce_file) as f:
            out["disk"] = f.read() == nonce
    except OSError:
        out["disk"] = False
    if store_file is not None:
        try:
            import fsspec

            with fsspec.open(store_file, "r", **store_options) as f:
                out["store"] = f.read() == nonce
        except Exception:
            out["store"] = False
    if tracking is not None:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{tracking.rstrip('/')}/health",
                                        timeout=_PROBE_TIMEOUT) as r:
                out["tracking"] = r.status == 200
        except Exception:
            out["tracking"] = False
    return out


def run(client: Any) -> Preflight:
    """Probe every worker of ``client``'s cluster (writes and removes two small files).

    Examples
    --------
    >>> from mlkit.cluster import get_client
    >>> run(get_client()).shared_disk     # doctest: +SKIP
    True
    """
    t0 = time.perf_counter()
    nonce = uuid.uuid4().hex
    folder = config.home("preflight")
    nonce_file = folder / f"{nonce}.txt"
    nonce_file.write_text(nonce)
    store = _safe_store()
    store_file = None
    store_opts = _store.options() if store else {}
    if store is not None:
        store_file = f"{store}/.mlkit-preflight/{nonce}.txt"
        try:
            import fsspec

            with fsspec.open(store_file, "w", **store_opts) as f:
                f.write(nonce)
        except Exception:
            store_file = None  # the client cannot write it: no worker will read it either
    tracking = _tracking_uri()
    try:
        answers = client.run(
            _probe, str(nonce_file), nonce, store_file, store_opts,
            tracking if tracking.startswith(("http://", "https://")) else None,
            on_error="return",
        )
    finally:
        nonce_file.unlink(missing_ok=True)
        if store_file is not None:
            with contextlib.suppress(Exception):
                import fsspec

                fs, p = fsspec.core.url_to_fs(store_file, **store_opts)
                fs.rm(p)
    workers = []
    for addr, a in sorted(answers.items()):
        if isinstance(a, BaseException):
            workers.append(WorkerReach(addr, _host_of(addr), False, False if store else None,
                                       None, error=repr(a)))
            continue
        workers.append(WorkerReach(
            addr, a["host"], bool(a["disk"]),
            (bool(a.get("store")) if store else None),
            a.get("tracking"),
        ))
    return Preflight(socket.gethostname(), str(config.home_path()), workers, store, tracking,
                     time.perf_counter() - t0, tracking_managed=_managed(tracking))


def _managed(tracking: str) -> bool:
    """True when ``tracking`` is the server this process started (mlkit.track.serve_tracking)."""
    import sys

    server = sys.modules.get("mlkit.track._server")
    return server is not None and server._BEFORE is not None and \
        os.environ.get("MLFLOW_TRACKING_URI") == tracking


def _host_of(address: str) -> str:
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


# -- used by every API that hands workers a path ------------------------------------------------


def _active_preflight() -> Preflight | None:
    from mlkit.cluster._core import current

    c = current()
    if c is None:
        return None
    return c.preflight


def _dir_shared(pf: Preflight, folder: Path) -> bool:
    """The nonce test on a folder of the client: do all workers see the same folder?"""
    key = str(folder)
    if key in pf._shared_dirs:
        return pf._shared_dirs[key]
    from mlkit.cluster._core import current

    c = current()
    nonce = uuid.uuid4().hex
    probe = folder / f".mlkit-probe-{nonce}"
    try:
        probe.write_text(nonce)
    except OSError:
        pf._shared_dirs[key] = False
        return False
    try:
        answers = c.client.run(_probe, str(probe), nonce, None, {}, None, on_error="return")
        ok = bool(answers) and all(
            isinstance(a, dict) and a["disk"] for a in answers.values()
        )
    finally:
        probe.unlink(missing_ok=True)
    pf._shared_dirs[key] = ok
    return ok


def _existing_parent(path: str) -> Path:
    p = Path(path[len("file://"):] if path.startswith("file://") else path).expanduser()
    p = p if p.is_absolute() else Path.cwd() / p
    while not p.exists() and p != p.parent:
        p = p.parent
    return p if p.is_dir() else p.parent


def require_reachable(path: Any, what: str, *, preflight: Preflight | None = None,
                      hint: str | None = None) -> None:
    """Refuse, before anything is written, a path the workers of the active cluster cannot see.

    A no-op without a cluster, for a cluster that shares the client's disk, and for URLs (the
    object store decides). A local path passes only if every worker sees the same folder.

    ``hint`` replaces the generic way out (e.g. "start a tracking server with --serve-artifacts").

    Raises
    ------
    ClientOnlyPathError
        Naming the path and the ways out.

    Examples
    --------
    >>> require_reachable("s3://bucket/data", "data")   # never refused here
    """
    if not _store.is_client_local(path):
        return
    pf = preflight or _active_preflight()
    if pf is None or not pf.remote:
        return
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    if _store.protocol_of(text) == "memory":
        shared = False
    else:
        shared = _dir_shared(pf, _existing_parent(text))
    if shared:
        return
    raise ClientOnlyPathError(_refusal(text, what, pf, hint), path=text)


def is_remote() -> bool:
    """True when the active cluster's workers do not share the client's disk (probed)."""
    pf = _active_preflight()
    return pf is not None and pf.remote


def _refusal(text: str, what: str, pf: Preflight, hint: str | None = None) -> str:
    hosts = ", ".join(pf.hosts)
    store = pf.store
    way = (
        f"use a path in the shared store (MLKIT_STORE={store}, e.g. "
        "mlkit.config.store_path('data', ...))"
        if store else
        "set MLKIT_STORE to an object-store URL (e.g. s3://bucket/mlkit) that every host "
        "reaches" + ("; for a path in the mlkit home, mlkit.track.serve_tracking() also gives "
                     "the workers a place (its artifact store)"
                     if _store.home_relative(text) is not None and not tracking_store(pf)
                     else "")
    )
    head = (f"{what} {text!r} is on the client's disk only: the workers (on {hosts}) do not "
            f"share this machine's disk, so they cannot see it. ")
    if hint:
        return head + hint
    return head + (f"Pass an object-store URL instead (e.g. s3://bucket/...), a folder on a mount "
                   f"every host shares, or {way}")


def tracking_store(pf: Preflight) -> str | None:
    """The artifact store of mlkit's tracking server as an fsspec URL, when every worker
    reaches it: ``mlflow-artifacts://HOST:PORT/mlkit`` (see :mod:`mlkit.track._artifacts_fs`)."""
    if not (pf.tracking_managed and pf.tracking_shared):
        return None
    netloc = pf.tracking.split("://", 1)[-1].rstrip("/")
    return f"mlflow-artifacts://{netloc}/mlkit"


def place(path: Any, what: str, storage_options: dict[str, Any] | None = None, *,
          tracking_artifacts: bool = False) -> tuple[Any, dict[str, Any] | None]:
    """Where ``path`` lives for the workers: ``(path, storage_options)`` to hand them.

    With a remote cluster, a path inside the mlkit home (where mlkit's own state lives) moves to
    the same place inside the shared store, with the store's options; any other local path must
    be one the workers see (:func:`require_reachable`). Unchanged on a local cluster.

    With ``tracking_artifacts`` and no shared store set, the artifact store of mlkit's tracking
    server (:func:`tracking_store`) stands in for it.

    Examples
    --------
    >>> place("s3://bucket/data", "data")
    ('s3://bucket/data', None)
    """
    if not _store.is_client_local(path):
        return path, storage_options
    pf = _active_preflight()
    if pf is None or not pf.remote:
        return path, storage_options
    rel = _store.home_relative(path)
    if rel is not None and pf.store is not None:
        return _store.join(rel), (storage_options or _store.options() or None)
    if rel is not None and tracking_artifacts and (base := tracking_store(pf)) is not None:
        return f"{base}/{rel}", None
    require_reachable(path, what, preflight=pf)
    return path, storage_options
