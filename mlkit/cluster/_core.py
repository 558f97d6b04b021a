"""Cluster lifecycle: one active cluster per process (kernel).

``up`` starts a local cluster (Dask-CUDA with one worker per GPU when GPUs are asked for or
seen; otherwise scheduler and worker processes that the kernel's Interrupt cannot reach, see
:mod:`mlkit.cluster._local`) or any importable Dask cluster manager; ``connect`` joins a
running scheduler. Everything else in mlkit finds the cluster through :func:`get_client`.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from mlkit import _args, config
from mlkit._imports import require
from mlkit.cluster import _gpu, _ssh, _warm
from mlkit.cluster._isolate import PRELOAD as isolate_preload
from mlkit.cluster._status import ClusterStatus, WorkerStatus
from mlkit.exceptions import ClusterError, ConfigArgumentError, ConfigError, NoClusterError

__all__ = [
    "Cluster",
    "ClusterPlan",
    "plan",
    "up",
    "connect",
    "current",
    "get_client",
    "scale",
    "down",
    "status",
]

_LOCK = threading.RLock()
_ACTIVE: Cluster | None = None

_ADDRESS_RE = re.compile(
    r"^(?:(tcp|tls|ucx|ws|wss|inproc)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})$"
)


@dataclass(frozen=True)
class ClusterPlan:
    """What ``up`` is about to start: the class to build and its keyword arguments.

    ``spec`` holds the user's explicit choices, used to decide whether a second ``up`` asks for
    the cluster that is already running.
    """

    kind: str  # "local", "cuda" or "manager"
    cluster_class: str
    kwargs: dict[str, Any]
    workers: int | None
    gpus: list[_gpu.GPUInfo] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    scalable: bool = True  # False: the manager starts exactly ``workers`` (SSHCluster's hosts)


def _check_positive(name: str, value: int | None) -> None:
    if value is not None:
        _args.positive_int(name, value, error=ConfigArgumentError)


def _default_workers() -> int:
    configured = config.settings().workers
    if configured:
        return configured
    return max(1, min(os.cpu_count() or 1, 4))


def _parse_memory(value: str | int | None) -> str | int | None:
    if value is None or isinstance(value, int):
        if isinstance(value, int) and value <= 0:
            raise ConfigError(f"memory_limit must be positive, but got {value}")
        return value
    text = str(value).strip()
    if text.lower() == "auto":
        return "auto"
    try:
        from dask.utils import parse_bytes

        parsed = parse_bytes(text)
    except (ValueError, TypeError, KeyError):
        raise ConfigError(
            f"memory_limit={value!r} is not a size: use e.g. '4GB', '512MiB' or 'auto'"
        ) from None
    if parsed <= 0:
        raise ConfigError(f"memory_limit must be positive, but got {value!r}")
    return text


def plan(
    workers: int | None = None,
    gpus: str | int | list[int] | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | int | None = None,
    *,
    cluster: str | None = None,
    host: str | None = None,
    dashboard: bool | None = None,
    nvml: Any | None = None,
    **options: Any,
) -> ClusterPlan:
    """Decide what :func:`up` would start, without starting anything.

    Parameters are those of :func:`up`. ``nvml`` replaces the NVML bindings (tests pass a fake).

    Examples
    --------
    >>> p = plan(workers=2, threads_per_worker=1)
    >>> p.kind, p.cluster_class, p.kwargs["n_workers"]
    ('local', 'mlkit.cluster._local.IsolatedCluster', 2)
    """
    _check_positive("workers", workers)
    _check_positive("threads_per_worker", threads_per_worker)
    memory = _parse_memory(memory_limit)
    settings = config.settings()
    host = host or settings.host
    dashboard = settings.dashboard if dashboard is None else dashboard
    dashboard_address = f"{host}:0" if dashboard else None
    spec = {
        k: v
        for k, v in {
            "workers": workers,
            "gpus": gpus,
            "threads_per_worker": threads_per_worker,
            "memory_limit": memory_limit,
            "cluster": cluster,
            "host": host if host != settings.host else None,
            **options,
        }.items()
        if v is not None
    }

    if cluster is not None:
        if gpus is not None:
            raise ConfigError(
                "gpus= cannot be combined with cluster=: pass the manager's own GPU options "
                "through options (e.g. --option worker_extra_args=...)"
            )
        if not isinstance(cluster, str) or "." not in cluster:
            raise ConfigError(
                f"cluster={cluster!r} must be a dotted class path such as "
                "'dask_jobqueue.SLURMCluster' or 'dask_kubernetes.operator.KubeCluster'"
            )
        if _ssh.is_ssh(cluster):
            # A fixed set of hosts: the workers are the hosts list, never scaled (see _ssh).
            kwargs, n = _ssh.options(workers=workers, threads_per_worker=threads_per_worker,
                                     memory_limit=memory, dashboard=dashboard, **options)
            return ClusterPlan("manager", cluster, kwargs, n, [], spec, scalable=False)
        kwargs = dict(options)
        if threads_per_worker is not None:
            kwargs.setdefault("threads_per_worker", threads_per_worker)
        if memory is not None:
            kwargs.setdefault("memory_limit", memory)
        return ClusterPlan("manager", cluster, kwargs, workers, [], spec)

    scratch = str(config.home("dask-scratch"))
    if gpus is not None:
        chosen = _gpu.select(gpus, _gpu.probe(nvml))
    else:
        # No explicit request: use every visible GPU if there is one, otherwise CPU workers.
        found = _gpu.probe(nvml)
        chosen = list(found.gpus) if (found and workers is None) else []

    if chosen:
        if workers is not None and workers != len(chosen):
            raise ConfigError(
                f"workers={workers} conflicts with {len(chosen)} selected GPU(s): a Dask-CUDA "
                "cluster runs one worker per GPU; drop workers= or change gpus="
            )
        kwargs = {
            "CUDA_VISIBLE_DEVICES": ",".join(str(g.index) for g in chosen),
            "n_workers": len(chosen),
            "threads_per_worker": threads_per_worker or 1,
            "memory_limit": memory if memory is not None else settings.memory_limit,
            "host": host,
            "dashboard_address": dashboard_address,
            "local_directory": scratch,
            "silence_logs": logging.ERROR,
            # Its worker processes are the kernel's children: out of reach of Interrupt.
            "preload": [isolate_preload],
            **options,
        }
        return ClusterPlan("cuda", "dask_cuda.LocalCUDACluster", kwargs, len(chosen), chosen, spec)

    n = workers or _default_workers()
    kwargs = {
        "n_workers": n,
        "threads_per_worker": threads_per_worker or settings.threads_per_worker,
        "memory_limit": memory if memory is not None else settings.memory_limit,
        "processes": True,
        "host": host,
        "scheduler_port": 0,
        "dashboard_address": dashboard_address,
        "local_directory": scratch,
        "silence_logs": logging.ERROR,
        **options,
    }
    # Scheduler and workers in subprocesses of their own session: the kernel's Interrupt (SIGINT
    # to its whole process group) must not reach them (see mlkit.cluster._local).
    cluster_class = (
        "distributed.LocalCluster"
        if options.get("processes") is False
        else "mlkit.cluster._local.IsolatedCluster"
    )
    return ClusterPlan("local", cluster_class, kwargs, n, [], spec)


def _import_class(path: str) -> type:
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ClusterError(
            f"cannot import cluster manager {path!r}: {exc}. Install the package that provides "
            "it (e.g. pip install dask-jobqueue / dask-kubernetes)"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ClusterError(f"module {module_name!r} has no cluster class {attr!r}") from None


class Cluster:
    """Handle on the active cluster: the Dask client, the deploy object (if mlkit owns it) and
    the description it was started with.

    Use :func:`up` or :func:`connect` to get one. In a notebook the handle displays as a live
    widget; ``str(handle)`` is a plain-text summary.

    Examples
    --------
    >>> import mlkit
    >>> c = mlkit.cluster.up(workers=1)          # doctest: +SKIP
    >>> c.client.submit(sum, [1, 2]).result()    # doctest: +SKIP
    3
    """

    def __init__(
        self,
        client: Any,
        deploy: Any | None,
        kind: str,
        spec: dict[str, Any],
        gpus: list[_gpu.GPUInfo] | None = None,
    ) -> None:
        self.client = client
        self.deploy = deploy
        self.kind = kind
        self.spec = spec
        self.gpus = list(gpus or [])
        self.closed = False
        self.scalable = True
        self.started_at = time.time()
        self._widget: Any = None

    # -- information ---------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return self.client.scheduler.address

    @property
    def dashboard_link(self) -> str | None:
        try:
            info = self.client.scheduler_info(n_workers=0)
        except Exception:
            return None
        if "dashboard" not in info.get("services", {}):
            return None
        from mlkit.cluster._dashboard import dashboard_link

        return dashboard_link(self.client)

    def status(self) -> ClusterStatus:
        """A snapshot: workers, threads, memory used and limit, GPUs, dashboard and address."""
        if self.closed:
            return ClusterStatus(self.kind, _safe_address(self), None, [], running=False)
        info = self.client.scheduler_info(n_workers=-1)
        gpus_by_worker: dict[str, list[_gpu.GPUInfo]] = {}
        pids: dict[str, int] = {}
        try:
            # NVML runs on each worker: that is where the GPUs are, also on remote clusters.
            probes = self.client.run(_worker_probe, wait=True)
            for addr, (pid, gpus) in probes.items():
                pids[addr] = pid
                gpus_by_worker[addr] = [_gpu.GPUInfo(**g) for g in gpus]
        except Exception:  # a worker leaving mid-call; the next refresh catches up
            pass
        workers = [
            WorkerStatus(
                name=str(w.get("name", addr)),
                address=addr,
                threads=int(w.get("nthreads", 0)),
                memory_used=int(w.get("metrics", {}).get("memory", 0)),
                memory_limit=int(w.get("memory_limit") or 0),
                pid=pids.get(addr),
                gpus=gpus_by_worker.get(addr, []),
            )
            for addr, w in sorted(
                info.get("workers", {}).items(), key=lambda kv: str(kv[1].get("name"))
            )
        ]
        return ClusterStatus(self.kind, self.address, self.dashboard_link, workers,
                             preflight=self._status_preflight(info))

    # -- what the workers reach (see _preflight) -----------------------------------------------
    _preflight: Any = None
    _preflight_workers: Any = None

    @property
    def preflight(self) -> Any:
        """What the workers really reach (:class:`mlkit.cluster._preflight.Preflight`).

        Probed on ``connect`` and again whenever the set of workers changes; a cluster mlkit
        started on this machine shares its disk by construction and is not probed.
        """
        from mlkit.cluster import _preflight

        if self.kind in ("local", "cuda"):
            if self._preflight is None:
                self._preflight = _preflight.local()
            return self._preflight
        workers = frozenset(self.client.scheduler_info(n_workers=-1).get("workers", {}))
        # Probe again when the workers, the shared store or the tracking URI change.
        now = (workers, _preflight.context())
        if self._preflight is None or now != self._preflight_workers:
            pf = _preflight.run(self.client)
            if not workers:
                return pf  # no worker to ask yet: not an answer worth keeping
            self._preflight, self._preflight_workers = pf, now
        return self._preflight

    def _status_preflight(self, info: dict[str, Any]) -> Any:
        if self.kind in ("local", "cuda"):
            return None
        try:
            return self.preflight
        except Exception:  # a worker leaving mid-probe; the next refresh probes again
            return self._preflight

    # -- control -------------------------------------------------------------------------------
    def scale(self, n: int, timeout: float = 60.0) -> ClusterStatus:
        """Scale to ``n`` workers and wait until they are there. See :func:`scale`."""
        _check_positive("n", n)
        if self.closed:
            raise NoClusterError("this cluster has been stopped; start one with mlkit.cluster.up()")
        if self.deploy is None:
            raise ClusterError(
                "this cluster was joined by address, so mlkit cannot add or remove its workers; "
                "scale it where it was started (its cluster manager or `dask worker` processes)"
            )
        if not self.scalable:
            workers = len(self.client.scheduler_info(n_workers=-1)["workers"])
            raise ClusterError(
                f"this {self.spec.get('cluster', 'cluster')} runs the {workers} worker(s) its "
                f"hosts list names and cannot be scaled to {n}: start it again with the hosts "
                "you want (mlkit.cluster.up(..., replace=True) / %mlscale up --replace)"
            )
        if self.kind == "cuda" and n > len(self.gpus):
            raise ConfigError(
                f"cannot scale a Dask-CUDA cluster to {n} workers: it has {len(self.gpus)} "
                "GPU(s) and runs one worker per GPU"
            )
        self.deploy.scale(n)
        deadline = time.monotonic() + timeout
        exited = getattr(self.deploy, "exited", None)
        while True:
            have = len(self.client.scheduler_info(n_workers=-1)["workers"])
            if have == n:
                break
            # A worker process that was wanted and exited will not join: say so now, with its
            # log, instead of at the deadline.
            wanted = {str(k) for k in getattr(self.deploy, "worker_spec", {})}
            gone = [(name, log) for name, log in (exited() if exited else []) if name in wanted]
            if gone and have < n:
                from mlkit.cluster._local import _tail

                name, log = gone[0]
                raise ClusterError(
                    f"scaling to {n} workers: worker process {name!r} exited while starting; "
                    f"its log ({log}) ends with:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                logs = getattr(self.deploy, "log_dir", None)
                raise ClusterError(
                    f"scaling to {n} workers did not finish within {timeout:.0f}s: {have} "
                    f"joined" + (f" (worker logs: {logs})" if logs else "")
                )
            time.sleep(0.1)
        self.spec = {**self.spec, "workers": n}
        self._changed()
        return self.status()

    def down(self) -> None:
        """Close the client and, if mlkit started it, the cluster. Idempotent."""
        global _ACTIVE
        if self.closed:
            return
        self.closed = True
        remote = None
        if self.deploy is not None and _ssh.is_ssh_deploy(self.deploy):
            remote = _ssh.remote_processes(self.client, self.deploy)  # asked while they answer
        try:
            self.client.close()
        finally:
            if self.deploy is not None:
                self.deploy.close()
            if remote:
                for line in _ssh.wait_stopped(remote):
                    warnings.warn(line, RuntimeWarning, stacklevel=2)
            with _LOCK:
                if _ACTIVE is self:
                    _ACTIVE = None
            self._changed()

    def _changed(self) -> None:
        """Redraw the live widget (if one was built) after a scale or a stop."""
        if self._widget is not None:
            try:
                self._widget.refresh()
            except Exception:  # drawing must never break scaling or stopping
                pass

    # -- display -------------------------------------------------------------------------------
    def widget(self) -> Any:
        """The live ipywidgets view of this cluster (built once, then cached)."""
        if self._widget is None:
            from mlkit._display import widget

            self._widget = widget(self)
        return self._widget

    def _ipython_display_(self) -> None:
        from mlkit._display import display_live

        display_live(self)

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()

    def __repr__(self) -> str:
        state = "stopped" if self.closed else _safe_address(self)
        return f"<mlkit.Cluster {self.kind} {state}>"

    def __str__(self) -> str:
        return str(self.status())


def _safe_address(c: Cluster) -> str:
    try:
        return c.client.scheduler.address
    except Exception:
        return "?"


def _worker_probe() -> tuple[int, list[dict[str, Any]]]:
    """Runs on a worker: its pid and the GPUs it can see."""
    from mlkit.cluster import _gpu as gpu_mod

    return os.getpid(), [g.to_dict() for g in gpu_mod.probe().gpus]


def _same_request(spec: dict[str, Any], running: dict[str, Any]) -> bool:
    return all(running.get(k) == v for k, v in spec.items())


def up(
    workers: int | None = None,
    gpus: str | int | list[int] | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | int | None = None,
    *,
    cluster: str | None = None,
    replace: bool = False,
    host: str | None = None,
    dashboard: bool | None = None,
    timeout: float = 120.0,
    scheduler: str | None = None,
    tracking: str | None = None,
    **options: Any,
) -> Cluster:
    """Start a cluster (or return the running one) and make it the active cluster.

    Parameters
    ----------
    workers : int, optional
        Number of CPU worker processes (default ``MLKIT_WORKERS`` or one per core, at most 4).
        On a GPU cluster, one worker per GPU.
    gpus : {"all"}, int, str or list of int, optional
        GPUs for a Dask-CUDA cluster: ``"all"``, a count, or device indices (``"0,1"``).
        Unset: every visible GPU if NVML sees any (and ``workers`` is unset), else CPU workers.
        Asking for GPUs on a machine without them is an error, never a silent CPU cluster.
    threads_per_worker : int, optional
        Threads per worker (default ``MLKIT_THREADS`` or 1).
    memory_limit : str or int, optional
        Per-worker memory limit such as ``"4GB"``; workers spill to disk beyond it.
    cluster : str, optional
        Dotted path of any Dask cluster manager, e.g. ``"dask_jobqueue.SLURMCluster"``; it is
        built with ``**options`` and scaled to ``workers``. ``"distributed.SSHCluster"`` takes
        ``hosts=[SCHEDULER, WORKER, ...]`` (plus ``connect_options``, ``remote_python``, ...):
        one worker per further host (``workers`` a multiple of them), the scheduler listening on
        ``hosts[0]``; its workers are probed like :func:`connect`'s.
    replace : bool
        Stop a running cluster with a different spec instead of raising.
    host : str, optional
        Address to listen on (default ``MLKIT_HOST`` = ``127.0.0.1``).
    dashboard : bool, optional
        Start the Dask dashboard (default on, bound to ``host`` on a free port).
    timeout : float
        Seconds to wait for the workers.
    scheduler : str, optional
        Join this running scheduler (``tcp://HOST:PORT``) instead of starting a cluster, as
        :func:`connect` does. Default: Dask's own ``DASK_SCHEDULER_ADDRESS`` (or its
        ``scheduler-address`` setting) when set, so a notebook written with ``%mlscale up`` runs
        unchanged against a cluster on other hosts; the local-cluster options are then unused.
    tracking : {None, "server"}, optional
        When joining a scheduler: see :func:`connect`. A cluster started here shares this
        machine's disk, so it needs no tracking server.
    **options
        Passed to the cluster class.

    Returns
    -------
    Cluster
        The active cluster handle; ``handle.client`` is the ``distributed.Client``.

    Examples
    --------
    >>> import mlkit
    >>> c = mlkit.cluster.up(workers=2)       # doctest: +SKIP
    >>> c.status().n_workers                  # doctest: +SKIP
    2
    >>> mlkit.cluster.down()                  # doctest: +SKIP
    """
    global _ACTIVE
    _check_tracking(tracking)
    joined = _scheduler_to_join(scheduler, cluster)
    if joined is not None:
        return connect(joined, replace=replace, tracking=tracking)
    p = plan(
        workers,
        gpus,
        threads_per_worker,
        memory_limit,
        cluster=cluster,
        host=host,
        dashboard=dashboard,
        **options,
    )
    with _LOCK:
        if _ACTIVE is not None and not _ACTIVE.closed:
            if _same_request(p.spec, _ACTIVE.spec) and _ACTIVE.kind in (p.kind, "remote"):
                return _ACTIVE
            if not replace:
                raise ClusterError(
                    f"a cluster is already running ({_ACTIVE.kind}, {_ACTIVE.spec or 'defaults'}) "
                    f"and you asked for {p.spec or 'defaults'}: call mlkit.cluster.down() "
                    "(%mlscale down) first, or pass replace=True"
                )
            _ACTIVE.down()
        _ACTIVE = _start(p, timeout)
        _warm.start(_ACTIVE.client)  # the first study/training need not pay imports, store
        return _ACTIVE


def _start(p: ClusterPlan, timeout: float) -> Cluster:
    distributed = require("distributed")
    if p.kind == "cuda":
        require("dask_cuda", "gpu")
    cls = _import_class(p.cluster_class)
    deploy = None
    try:
        try:
            deploy = cls(**p.kwargs)
        except TypeError as exc:
            raise ClusterError(
                f"{p.cluster_class} rejected the options {sorted(p.kwargs)}: {exc}"
            ) from exc
        if p.kind == "manager" and p.workers and p.scalable:
            deploy.scale(p.workers)
        client = distributed.Client(deploy, set_as_default=True)
        if p.workers:
            if p.kind in ("local", "cuda"):  # their processes are starting: the kernel is idle
                _warm.warm_workers(client)  # those up already import meanwhile
                _warm.import_in_kernel()
            _wait_for_workers(client, deploy, p.workers, timeout)
    except BaseException as exc:
        # Never leave a half-started cluster (and its processes) behind.
        if deploy is not None:
            try:
                deploy.close()
            except Exception:
                pass
        if isinstance(exc, (ClusterError, KeyboardInterrupt)):
            raise
        if isinstance(exc, Exception):
            hint = _ssh.HINT if _ssh.is_ssh(p.cluster_class) else ""
            raise ClusterError(f"could not start {p.cluster_class}: {exc}{hint}") from exc
        raise
    handle = Cluster(client, deploy, p.kind, p.spec, p.gpus)
    handle.scalable = p.scalable
    if p.kind == "manager":
        # A manager may have put the workers anywhere: find out now, as connect does.
        _connect_preflight(handle)
    return handle


def _wait_for_workers(client: Any, deploy: Any, n: int, timeout: float) -> None:
    """Wait for ``n`` workers; a worker process that exits instead fails at once, with its log."""
    exited = getattr(deploy, "exited", None)
    if exited is None:
        client.wait_for_workers(n, timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while len(client.scheduler_info(n_workers=-1)["workers"]) < n:
        gone = exited()
        if gone:
            from mlkit.cluster._local import _tail

            name, log = gone[0]
            raise ClusterError(
                f"worker process {name!r} exited while starting; its log ({log}) ends with:\n"
                f"{_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise ClusterError(f"{n} workers did not join within {timeout:.0f}s (logs: "
                               f"{getattr(deploy, 'log_dir', '?')})")
        time.sleep(0.05)


def _scheduler_to_join(scheduler: str | None, cluster: str | None) -> str | None:
    """The scheduler ``up`` joins instead of starting one: the argument, else Dask's setting."""
    if scheduler is not None:
        if cluster is not None:
            raise ConfigError("scheduler= joins a running scheduler and cluster= starts one: "
                              "pass one of them")
        return scheduler
    if cluster is not None:
        return None
    # The environment first: dask reads DASK_* only when it is imported, and a notebook may set
    # it in a cell after that.
    env = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip()
    if env:
        return env
    import sys

    if "dask" in sys.modules:
        configured = sys.modules["dask"].config.get("scheduler-address", None)
        if configured:
            return str(configured)
    return None


def _normalise_address(address: str) -> str:
    if not isinstance(address, str):
        raise ConfigError(f"address must be a string like 'tcp://127.0.0.1:8786', got {address!r}")
    text = address.strip()
    m = _ADDRESS_RE.match(text)
    if not m or not (0 < int(m.group(3)) < 65536):
        raise ConfigError(
            f"{address!r} is not a scheduler address: use 'tcp://HOST:PORT' "
            "(for example tcp://127.0.0.1:8786)"
        )
    return text if m.group(1) else f"tcp://{text}"


def _check_tracking(tracking: Any) -> None:
    if tracking not in (None, "server"):
        raise ConfigError(
            f"tracking={tracking!r}: pass 'server' (start mlkit's tracking server when the "
            "workers do not share this machine's disk) or leave it unset"
        )


def connect(address: Any, *, timeout: float = 10.0, replace: bool = False,
            tracking: str | None = None) -> Cluster:
    """Join a running Dask scheduler (or a cluster object) and make it the active cluster.

    The workers are probed at once (:attr:`Cluster.preflight`): which hosts they are on,
    whether they share this machine's disk, where state goes and what is missing.

    Parameters
    ----------
    address : str or distributed cluster
        ``tcp://host:port`` of a scheduler started elsewhere (``dask scheduler``, a job queue,
        Kubernetes ...), or a cluster manager object you built yourself.
    timeout : float
        Seconds to wait for the scheduler to answer.
    replace : bool
        Leave a different active cluster (stopping it if mlkit started it) instead of raising.
    tracking : {None, "server"}, optional
        ``"server"``: when the preflight finds that the workers do not share this machine's
        disk and ``MLFLOW_TRACKING_URI`` names no store, start (or reuse) mlkit's tracking
        server (:func:`mlkit.track.serve_tracking`) and hand it to every worker. Unset: a
        remote cluster's status names that as missing, with the way to start it. A tracking
        server that already runs is handed to the new cluster's workers either way.

    Examples
    --------
    >>> import mlkit
    >>> c = mlkit.cluster.connect("tcp://127.0.0.1:8786")   # doctest: +SKIP
    >>> c = mlkit.cluster.connect("tcp://scheduler:8786", tracking="server")  # doctest: +SKIP
    """
    global _ACTIVE
    _check_tracking(tracking)
    deploy_obj = None
    if isinstance(address, str):
        target: Any = _normalise_address(address)
        spec = {"address": target}
    elif hasattr(address, "scheduler_address"):
        deploy_obj = address
        target = address
        spec = {"address": address.scheduler_address}
    else:
        raise ConfigError(
            f"cannot connect to {address!r}: pass 'tcp://HOST:PORT' or a cluster object"
        )
    with _LOCK:
        if _ACTIVE is not None and not _ACTIVE.closed:
            if _ACTIVE.spec.get("address") == spec["address"] or _ACTIVE.address == spec["address"]:
                if tracking is not None:  # joined already: asking for a server still counts
                    _connect_tracking(_ACTIVE, tracking)
                return _ACTIVE
            if not replace:
                raise ClusterError(
                    f"a cluster is already active at {_ACTIVE.address}: call "
                    "mlkit.cluster.down() (%mlscale down) first, or pass replace=True"
                )
            _ACTIVE.down()
        distributed = require("distributed")
        try:
            client = distributed.Client(target, timeout=f"{timeout}s", set_as_default=True)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"could not reach a Dask scheduler at {spec['address']} within {timeout:.0f}s: "
                "check that it is running (`dask scheduler`) and the address is right"
            ) from exc
        # A cluster object passed in is owned by the caller: we only close the client.
        _ACTIVE = Cluster(client, None, "remote", spec)
        _ACTIVE._user_cluster = deploy_obj  # type: ignore[attr-defined]
        _connect_preflight(_ACTIVE)
        _connect_tracking(_ACTIVE, tracking)
        _warm.start(client)
        return _ACTIVE


def _connect_tracking(c: Cluster, tracking: str | None) -> None:
    """Hand a running tracking server to the workers; with "server", start one if needed."""
    import sys

    if "mlkit.track._server" in sys.modules or tracking == "server":
        from mlkit.track import _server

        if tracking == "server" and _wants_server(c):
            _server.serve_tracking()  # ships it to the workers of the active cluster (c)
            _connect_preflight(c)  # the tracking URI changed: probe the workers' reach again
        else:
            _server.ship_to_workers(c.client)


def _wants_server(c: Cluster) -> bool:
    from mlkit.track._defaults import default_uri

    try:
        pf = c.preflight  # probed on connect; probed now if it could not be then
    except Exception:
        return False
    if not pf.remote:
        return False  # unprobed (no worker yet) or the workers share this disk
    current_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not current_uri or current_uri == default_uri():
        return True
    from mlkit.track._server import tracking_server

    srv = tracking_server()
    return srv is not None and srv.url == current_uri  # ours: reuse (and re-ship) it


def _connect_preflight(c: Cluster) -> None:
    """Probe the workers now, before the first job; a failure here is reported in the status."""
    import logging

    try:
        c.preflight  # noqa: B018 - the property probes and caches
    except Exception as exc:
        logging.getLogger("mlkit").warning("cluster preflight failed: %s", exc)


def current() -> Cluster | None:
    """The active cluster handle, or None.

    Examples
    --------
    >>> from mlkit.cluster import current
    >>> current() is None or current().closed is False
    True
    """
    with _LOCK:
        if _ACTIVE is not None and _ACTIVE.closed:
            return None
        return _ACTIVE


def get_client() -> Any:
    """The ``distributed.Client`` every mlkit API uses.

    The active mlkit cluster's client; else a Dask client the user created themselves; else
    :class:`~mlkit.exceptions.NoClusterError` saying how to start one.

    Examples
    --------
    >>> from mlkit.cluster import get_client
    >>> client = get_client()    # doctest: +SKIP
    """
    c = current()
    if c is not None:
        return c.client
    import sys

    if "distributed" in sys.modules:
        from distributed import default_client

        try:
            return default_client()
        except ValueError:
            pass
    raise NoClusterError(
        "no cluster is running: start one with mlkit.cluster.up() (or %mlscale up), "
        "or join one with mlkit.cluster.connect('tcp://HOST:PORT')"
    )


def _require_active() -> Cluster:
    c = current()
    if c is None:
        raise NoClusterError(
            "no cluster is running: start one with mlkit.cluster.up() (or %mlscale up)"
        )
    return c


def scale(n: int, timeout: float = 60.0) -> ClusterStatus:
    """Scale the active cluster to ``n`` workers and wait until they have joined or left.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.cluster.scale(3).n_workers     # doctest: +SKIP
    3
    """
    return _require_active().scale(n, timeout)


def status() -> ClusterStatus:
    """Snapshot of the active cluster (workers, threads, memory, GPUs, dashboard, address).

    Examples
    --------
    >>> import mlkit
    >>> print(mlkit.cluster.status())        # doctest: +SKIP
    mlkit cluster (local) at tcp://127.0.0.1:40000 ...
    """
    return _require_active().status()


def down() -> bool:
    """Stop the active cluster (or leave a joined one). Returns False if none was running.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.cluster.down()
    False
    """
    c = current()
    if c is None:
        return False
    c.down()
    return True


@atexit.register
def _shutdown_at_exit() -> None:
    c = current()
    if c is not None:
        try:
            c.down()
        except Exception:
            pass
