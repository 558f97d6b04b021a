"""Test hosts without a shared disk: network namespaces on a bridge, one mount namespace each.

:class:`TestNet` builds, as root, one network namespace per host (``mlk-<pid>-<host>``) wired by
veth links to a bridge that lives in a namespace of its own, with addresses from the
documentation range 192.0.2.0/24 and loopback up. Each host also gets a persistent mount and UTS
namespace (bind-mounted under ``/run/mlk-<pid>/``): a private tmpfs over ``/tmp`` holds its
working folder (``/tmp/work``), its mlkit home (``/tmp/work/.mlkit``) and its ``$HOME``, and its
hostname is its own name. Everything else (the repository and its venv) is the same everywhere,
as on identical machines -- exactly the case where "the folder exists on every host" proves
nothing.

Processes run on a host through ``nsenter`` into its namespaces with a clean environment; their
output goes to ``/run/mlk-<pid>/logs/<name>.log``. :meth:`TestNet.down` kills every process it
started (by PID, then whatever is still inside the namespaces it made), unmounts, and deletes the
namespaces and links, also after a failure half-way through :meth:`TestNet.up`.

Examples
--------
>>> with TestNet(["scheduler", "worker1", "worker2", "client"]) as net:   # doctest: +SKIP
...     sched = net.start_scheduler("scheduler")
...     net.start_worker("worker1", sched)
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SUBNET = "192.0.2"  # RFC 5737 documentation range: never a real network
WORKDIR = "/tmp/work"
HOME = f"{WORKDIR}/.mlkit"
AGENT = Path(__file__).with_name("_agent.py")


class HostsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, no unshare/nsenter)."""


try:  # the suite's one polling helper; a local copy when _hosts runs outside pytest
    from tests._wait import wait_for
except ImportError:  # pragma: no cover
    def wait_for(cond: Callable[[], Any], *, timeout: float = 120.0, what: str = "condition",
                 interval: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := cond()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(interval)
        return value


def why_unavailable() -> str | None:
    """None if test hosts can be built here, else the reason."""
    if sys.platform != "linux":
        return f"network namespaces need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "building network namespaces needs root (CI runs the suite as root)"
    for tool, pkg in (("ip", "iproute2"), ("nsenter", "util-linux"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing: apt-get install -y {pkg}"
    return None


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise HostsUnavailable(
            f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc


@dataclass
class Host:
    """One test host: its name, address and namespaces."""

    net: TestNet
    name: str
    addr: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"{self.net.prefix}{self.name}"

    def _ns_file(self, kind: str) -> str:
        return str(self.net.run_dir / f"{self.name}.{kind}")

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The host's clean environment: the shared venv first on PATH, a private home."""
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": f"{WORKDIR}/home",
            "LANG": "C.UTF-8",
            "MLKIT_HOME": HOME,
            "MLKIT_HOST": self.addr,
            "MLKIT_DASHBOARD": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
        }
        env.update(self.net.env)
        env.update(extra or {})
        return env

    def argv(self, argv: Iterable[str]) -> list[str]:
        return [
            "nsenter", f"--net=/run/netns/{self.netns}", f"--mount={self._ns_file('mnt')}",
            f"--uts={self._ns_file('uts')}", "--", "env", f"--chdir={WORKDIR}", *argv,
        ]

    def popen(self, argv: Iterable[str], *, name: str, env: dict[str, str] | None = None,
              pipe: bool = False) -> subprocess.Popen:
        """Start a process on this host; its output goes to the log ``name``.

        With ``pipe`` its stdin and stdout are pipes to the caller (stderr still to the log).
        """
        with open(self.net.log_path(name), "ab") as log:
            # Its own session: a test's Ctrl-C or a kernel interrupt never reaches the daemons.
            proc = subprocess.Popen(
                self.argv(argv), env=self.env(env), start_new_session=True,
                stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else log, stderr=log,
            )
        self.procs.append(proc)
        return proc

    def run(self, argv: Iterable[str], *, timeout: float = 120, env: dict[str, str] | None = None,
            check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command on this host and wait for it (output captured)."""
        proc = subprocess.run(self.argv(argv), env=self.env(env), capture_output=True,
                              text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} on {self.name} exited {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def python(self, code: str, **kw: Any) -> subprocess.CompletedProcess:
        """Run Python code on this host with the venv's interpreter."""
        return self.run([sys.executable, "-c", code], **kw)

    def read_file(self, path: str) -> bytes | None:
        """A file's bytes as this host sees it (None if it has none at ``path``)."""
        proc = self.run(["cat", path], check=False)
        return proc.stdout.encode() if proc.returncode == 0 else None


class TestNet:
    """A set of test hosts on one bridge; a context manager that always tears down."""

    __test__ = False  # not a pytest test class

    def __init__(self, names: Iterable[str], tag: str = "",
                 env: dict[str, str] | None = None) -> None:
        # The PID makes the names unique per test process; ``tag`` tells two nets of one apart.
        self.prefix = f"mlk-{os.getpid()}{tag}-"
        self.run_dir = Path(f"/run/{self.prefix.rstrip('-')}")
        self.hosts: dict[str, Host] = {}
        self.env = dict(env or {})  # every host's environment (credentials, endpoints ...)
        for i, name in enumerate(names):
            self.hosts[name] = Host(self, name, f"{SUBNET}.{10 + i}")
        self._made_netns: list[str] = []
        self._mounts: list[str] = []

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def log(self, name: str) -> str:
        p = self.log_path(name)
        return p.read_text(errors="replace") if p.exists() else ""

    # -- building ------------------------------------------------------------------------------
    def up(self) -> TestNet:
        reason = why_unavailable()
        if reason:
            raise HostsUnavailable(reason)
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _build(self) -> None:
        br = f"{self.prefix}br"
        _sh("ip", "netns", "add", br)
        self._made_netns.append(br)
        _sh("ip", "-n", br, "link", "set", "lo", "up")
        _sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        _sh("ip", "-n", br, "link", "set", "br0", "up")
        # A private-propagation folder to bind each host's mount/UTS namespace to (as
        # `ip netns` does for /run/netns), so later processes can join the same namespaces.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _sh("mount", "--bind", str(self.run_dir), str(self.run_dir))
        self._mounts.append(str(self.run_dir))
        _sh("mount", "--make-private", str(self.run_dir))
        (self.run_dir / "logs").mkdir(exist_ok=True)
        for i, host in enumerate(self.hosts.values()):
            ns = host.netns
            _sh("ip", "netns", "add", ns)
            self._made_netns.append(ns)
            _sh("ip", "-n", br, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)
            _sh("ip", "-n", br, "link", "set", f"v{i}", "master", "br0", "up")
            _sh("ip", "-n", ns, "addr", "add", f"{host.addr}/24", "dev", "eth0")
            _sh("ip", "-n", ns, "link", "set", "eth0", "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            for kind in ("mnt", "uts"):
                Path(host._ns_file(kind)).touch()
            # unshare binds the new namespaces onto the files from the root mount namespace (so
            # they outlive this command); the tmpfs is mounted inside the new one only.
            _sh("nsenter", f"--net=/run/netns/{ns}", "unshare",
                f"--mount={host._ns_file('mnt')}", f"--uts={host._ns_file('uts')}",
                "--propagation", "private", "sh", "-c",
                " && ".join([*self._keep_under_tmp(host, "hold"),
                             "mount -t tmpfs -o size=2g,mode=1777 mlk-tmp /tmp",
                             *self._keep_under_tmp(host, "restore"),
                             f"mkdir -p {WORKDIR}/home {HOME}", f"hostname {host.name}"]))
            self._mounts += [host._ns_file("mnt"), host._ns_file("uts")]

    def _keep_under_tmp(self, host: Host, step: str) -> list[str]:
        """Shell steps that keep the repository and its venv visible on a host when they live
        under /tmp (a clone in /tmp, as a fresh-clone check makes), which the host's private
        tmpfs would hide: held by a bind mount outside /tmp, then moved back into place."""
        keep = []
        for path in (REPO, VENV_BIN.parent):
            if path.is_relative_to("/tmp") and not any(path.is_relative_to(k) for k in keep):
                keep.append(path)
        steps = []
        for i, path in enumerate(keep):
            held = self.run_dir / f"keep-{host.name}-{i}"
            if step == "hold":
                held.mkdir(parents=True, exist_ok=True)
                steps.append(f"mount --bind {path} {held}")
            else:
                steps.append(f"mkdir -p {path} && mount --move {held} {path}")
        return steps

    # -- tearing down --------------------------------------------------------------------------
    def down(self) -> None:
        """Kill what runs on the hosts, unmount, delete namespaces and links. Idempotent."""
        procs = [p for h in self.hosts.values() for p in h.procs]
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        # Anything left inside our namespaces was started by us (e.g. a worker's grandchild).
        for ns in self._made_netns:
            pids = _sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for h in self.hosts.values():
            h.procs.clear()
        for m in reversed(self._mounts):
            _sh("umount", "-l", m, check=False)
        self._mounts.clear()
        for ns in reversed(self._made_netns):
            _sh("ip", "netns", "del", ns, check=False)  # deletes its end of every veth too
        self._made_netns.clear()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> TestNet:
        return self.up()

    def __exit__(self, *exc: Any) -> None:
        self.down()

    # -- Dask on the hosts ---------------------------------------------------------------------
    def start_scheduler(self, host: str, port: int = 8786) -> str:
        h = self.hosts[host]
        h.popen(["dask", "scheduler", "--host", h.addr, "--port", str(port), "--no-dashboard",
                 "--no-show"], name=f"scheduler@{host}")
        address = f"tcp://{h.addr}:{port}"
        wait_for(lambda: "Scheduler at:" in self.log(f"scheduler@{host}"), timeout=60,
                 what=f"the scheduler on {host} ({self.log(f'scheduler@{host}')[-500:]})")
        return address

    def start_worker(self, host: str, scheduler: str, *, nthreads: int = 1,
                     memory_limit: str = "2GB", env: dict[str, str] | None = None
                     ) -> subprocess.Popen:
        h = self.hosts[host]
        return h.popen(
            ["dask", "worker", scheduler, "--host", h.addr, "--name", host, "--nworkers", "1",
             "--nthreads", str(nthreads), "--memory-limit", memory_limit, "--no-dashboard",
             "--local-directory", "/tmp/dask-worker"],
            name=f"worker@{host}", env=env,
        )


def start_moto(host: Host, port: int = 5000, bucket: str = "mlkit") -> str:
    """moto's real S3 server on ``host``; returns its endpoint URL (the bucket made)."""
    host.popen(["moto_server", "-H", host.addr, "-p", str(port)], name=f"moto@{host.name}")
    endpoint = f"http://{host.addr}:{port}"
    code = ("import s3fs, sys\n"
            "try:\n s3fs.S3FileSystem(endpoint_url=sys.argv[1]).mkdir(sys.argv[2])\n"
            "except Exception as e:\n print(e); sys.exit(1)")
    wait_for(lambda: host.run([sys.executable, "-c", code, endpoint, bucket],
                              check=False).returncode == 0,
             timeout=60, interval=0.5, what=f"moto's S3 server on {host.name}")
    return endpoint


class Session:
    """A long-lived Python process on a host that runs code like a notebook kernel does.

    ``run(code)`` executes ``code`` in one persistent namespace and returns a dict with ``ok``,
    ``stdout``, ``value`` (of the optional expression ``expr``, JSON or its repr) and, on failure,
    ``type``, ``bases`` (the exception's class names), ``message`` and ``traceback``.
    """

    def __init__(self, host: Host, env: dict[str, str] | None = None) -> None:
        self.host = host
        self.proc = host.popen([sys.executable, str(AGENT)], name=f"session@{host.name}",
                               env=env, pipe=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.decode())
        self._lines.put("")

    def run(self, code: str, expr: str | None = None, timeout: float = 180) -> dict[str, Any]:
        assert self.proc.stdin is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the session on {self.host.name} exited: "
                               f"{self.host.net.log('session@' + self.host.name)[-3000:]}")
        self.proc.stdin.write((json.dumps({"code": code, "expr": expr}) + "\n").encode())
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"code on {self.host.name} did not finish within {timeout:.0f}s:\n{code}\n"
                f"{self.host.net.log('session@' + self.host.name)[-3000:]}"
            ) from None
        if not line:
            raise RuntimeError(f"the session on {self.host.name} died: "
                               f"{self.host.net.log('session@' + self.host.name)[-3000:]}")
        return json.loads(line)

    def ok(self, code: str, expr: str | None = None, timeout: float = 180) -> Any:
        """Run ``code`` and return the value of ``expr``; fail the test with the traceback."""
        out = self.run(code, expr, timeout)
        if not out["ok"]:
            raise AssertionError(f"{out['type']}: {out['message']}\n{out['traceback']}")
        return out["value"]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
