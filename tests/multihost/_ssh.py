"""Debian's sshd on the test hosts, for distributed's SSHCluster (asyncssh on the client host).

:class:`SSHHosts` generates, into a folder of its own under the net's run folder (outside every
host's private ``/tmp``, so each host's sshd reads its own files there), one ed25519 host key per
host and one client key, then starts ``/usr/sbin/sshd -D`` in each host's namespaces listening
only on that host's address, port 22. Each sshd's PID is recorded (and checked against its
``PidFile``); :meth:`SSHHosts.stop` stops them by PID, also when a test failed half-way.

The client host gets what a user's machine has: ``~/.ssh/id_ed25519``, a ``known_hosts`` listing
every host's key and a ``config`` (``User root``, that key, strict host-key checking), all in its
private home, so asyncssh connects with no options at all; the same files are also offered
under :attr:`SSHHosts.dir` for ``connect_options``.

Sessions that sshd starts get the host's environment through ``SetEnv`` (its private ``$HOME``
and mlkit home, the shared venv first on ``PATH``, the object store's credentials), the way a
real host's login environment carries its configuration.

Examples
--------
>>> with TestNet(["scheduler", "worker1", "client"]) as net:           # doctest: +SKIP
...     with SSHHosts(net, ["scheduler", "worker1"], client="client") as ssh:
...         ssh.connect_options
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from _hosts import WORKDIR, Host, TestNet, wait_for

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself and so must be started by its absolute path
PORT = 22


def why_unavailable() -> str | None:
    """None if Debian's sshd and ssh-keygen are here, else what to install."""
    for tool in (SSHD, shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"):
        if not os.access(tool, os.X_OK):
            return (f"{tool} is missing: run `make system-deps` as root "
                    "(or `apt-get install -y openssh-server`)")
    return None


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                    str(path)], check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


class SSHHosts:
    """One sshd per named host, keys made here, the client host configured to reach them."""

    def __init__(self, net: TestNet, hosts: list[str], client: str) -> None:
        self.net = net
        self.hosts: list[Host] = [net[h] for h in hosts]
        self.client = net[client]
        self.dir = net.run_dir / "ssh"
        self.pids: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen] = {}

    # -- what the client uses -------------------------------------------------------------------
    @property
    def client_key(self) -> str:
        return str(self.dir / "client_ed25519")

    @property
    def known_hosts(self) -> str:
        return str(self.dir / "known_hosts")

    @property
    def connect_options(self) -> dict[str, Any]:
        """asyncssh.connect keywords that name the key and known_hosts explicitly."""
        return {"username": "root", "client_keys": [self.client_key],
                "known_hosts": self.known_hosts}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> SSHHosts:
        reason = why_unavailable()
        if reason:
            raise RuntimeError(reason)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.dir.mkdir(mode=0o700)
        client_pub = _keygen(self.dir / "client_ed25519", "mlkit-test-client")
        (self.dir / "authorized_keys").write_text(client_pub + "\n")
        known = []
        # sshd's privilege-separation folder (the package's tmpfiles.d makes it at boot); /run
        # is the same on every test host.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        for h in self.hosts:
            d = self.dir / h.name
            d.mkdir(mode=0o700)
            pub = _keygen(d / "host_ed25519", h.name)
            known.append(f"{h.addr} {' '.join(pub.split()[:2])}")
            env = h.env()
            env.pop("MLKIT_DASHBOARD", None)  # mlkit's own choice travels with the cluster
            setenv = " ".join(f'"{k}={v}"' for k, v in sorted(env.items()))
            (d / "sshd_config").write_text("\n".join([
                f"ListenAddress {h.addr}:{PORT}",
                f"HostKey {d / 'host_ed25519'}",
                f"PidFile {d / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PrintMotd no",
                "PrintLastLog no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "MaxStartups 50",  # SSHCluster opens one connection per process at once
                f"SetEnv {setenv}",
                "",
            ]))
            self._procs[h.name] = h.popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                                          name=f"sshd@{h.name}")
        (self.dir / "known_hosts").write_text("\n".join(known) + "\n")
        for h in self.hosts:
            proc, pidfile = self._procs[h.name], self.dir / h.name / "sshd.pid"
            wait_for(lambda proc=proc, pidfile=pidfile: proc.poll() is not None or (
                pidfile.exists() and pidfile.read_text().strip() == str(proc.pid)),
                timeout=30, what=f"sshd on {h.name} ({self.net.log(f'sshd@{h.name}')[-800:]})")
            if proc.poll() is not None:
                raise RuntimeError(f"sshd on {h.name} exited {proc.returncode}: "
                                   f"{self.net.log(f'sshd@{h.name}')[-2000:]}")
            self.pids[h.name] = proc.pid
        self._configure_client()

    def _configure_client(self) -> None:
        ssh_dir = f"{WORKDIR}/home/.ssh"
        c = self.client
        c.run(["install", "-d", "-m", "700", ssh_dir])
        c.run(["install", "-m", "600", self.client_key, f"{ssh_dir}/id_ed25519"])
        c.run(["install", "-m", "644", self.known_hosts, f"{ssh_dir}/known_hosts"])
        config = "\n".join([
            f"Host {' '.join(h.addr for h in self.hosts)}",
            "  User root",
            f"  IdentityFile {ssh_dir}/id_ed25519",
            f"  UserKnownHostsFile {ssh_dir}/known_hosts",
            "  StrictHostKeyChecking yes",
            "",
        ])
        c.run(["sh", "-c", f"cat > {ssh_dir}/config && chmod 600 {ssh_dir}/config"],
              input=config)

    def stop(self) -> None:
        """Stop every sshd by its PID (its sessions end with it). Idempotent."""
        for proc in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
        self._procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SSHHosts:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def dask_processes(host: Host) -> list[str]:
    """The command lines of every Dask process on ``host`` (scheduler, nanny, worker ...)."""
    ns = host.netns
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    found = []
    for pid in out.split():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        line = " ".join(a.decode(errors="replace") for a in argv if a)
        if "distributed" in line or "dask" in line or "multiprocessing" in line:
            found.append(f"{pid}: {line}")
    return found
