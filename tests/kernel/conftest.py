"""A real Jupyter kernel, started and interrupted the way JupyterLab does it (jupyter_client's
``KernelManager``: ``interrupt_kernel`` is ``os.killpg(pgid, SIGINT)`` on the kernel's group)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests._wait import wait_for


@dataclass
class Reply:
    """What one cell did: its reply status, error name, printed text, seconds to the reply."""

    status: str
    ename: str = ""
    evalue: str = ""
    stdout: str = ""
    stderr: str = ""
    outputs: list[dict] = field(default_factory=list)
    seconds: float = 0.0


class CellFailed(BaseException):
    """The cell to interrupt ended on its own (a BaseException: wait_for must not retry it)."""


class Kernel:
    """One kernel process plus a blocking client; cells run one at a time."""

    def __init__(self, km, kc) -> None:
        self.km, self.kc = km, kc
        self._stdout: dict[str, list[str]] = {}

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid

    def _collect(self, msg_id: str, timeout: float) -> Reply:
        """Read iopub until the cell's kernel status is idle again."""
        out, err, outputs = self._stdout.setdefault(msg_id, []), [], []
        ename = evalue = ""
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"cell {msg_id} still running after {timeout:.0f}s") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif kind == "error":
                ename, evalue = content["ename"], content["evalue"]
            elif kind in ("display_data", "execute_result"):
                outputs.append(content.get("data", {}))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        return Reply(reply["content"]["status"], ename, evalue, "".join(out), "".join(err),
                     outputs)

    def run(self, code: str, timeout: float = 300) -> Reply:
        return self._collect(self.kc.execute(code), timeout)

    def ok(self, code: str, timeout: float = 300) -> str:
        """Run a cell that must succeed; return what it printed."""
        r = self.run(code, timeout)
        assert r.status == "ok", f"{code!r} failed: {r.ename}: {r.evalue}\n{r.stderr}"
        return r.stdout

    def interrupt_during(self, code: str, ready, *, what: str, timeout: float = 300) -> Reply:
        """Start ``code``, wait until ``ready(printed_so_far)`` holds, press Interrupt, and
        return the cell's reply with the seconds from the interrupt to the reply."""
        msg_id = self.kc.execute(code)
        printed: list[str] = []

        def pump() -> str:
            # Keep reading iopub while waiting (the cell's own output tells us where it is).
            try:
                while True:
                    msg = self.kc.get_iopub_msg(timeout=0.01)
                    if (msg["parent_header"].get("msg_id") == msg_id
                            and msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout"):
                        printed.append(msg["content"]["text"])
                    if (msg["parent_header"].get("msg_id") == msg_id
                            and msg["msg_type"] == "error"):
                        raise CellFailed(f"{what}: the cell failed before the interrupt: "
                                         f"{msg['content']['ename']}: {msg['content']['evalue']}")
            except queue.Empty:
                pass
            return "".join(printed)

        wait_for(lambda: ready(pump()), timeout=timeout, what=what)
        self._stdout[msg_id] = printed
        start = time.monotonic()
        self.km.interrupt_kernel()
        reply = self._collect(msg_id, timeout)
        reply.seconds = time.monotonic() - start
        return reply


def _children(pid: int) -> list:
    import psutil

    try:
        return [p for p in psutil.Process(pid).children(recursive=True)
                if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(scope="module")
def kernel_home(tmp_path_factory):
    return tmp_path_factory.mktemp("kernel-home")


@contextlib.contextmanager
def started_kernel(home: Path, **extra_env: str):
    """A python3 kernel of this venv in ``home`` (its mlkit home under it), stopped on exit.

    Another test's MLflow settings never leak in (``mlflow.set_experiment`` writes
    ``MLFLOW_EXPERIMENT_ID`` into this process's environment)."""
    from jupyter_client import KernelManager

    env = {
        **os.environ,
        "MLKIT_HOME": str(home / "mlkit"),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        **extra_env,
    }
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(home))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        yield Kernel(km, kc)
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(kernel_home):
    """A python3 kernel of this venv with mlkit loaded and a 2-worker cluster up."""
    # The repository root on PYTHONPATH, so cells can import tests' helpers like any module.
    with started_kernel(kernel_home, MLKIT_DASHBOARD="0",
                        PYTHONPATH=str(Path(__file__).resolve().parents[2])) as k:
        k.ok("%load_ext mlkit")
        k.ok("%mlscale up --workers 2 --threads 1 --memory 2GB", timeout=300)
        yield k


@pytest.fixture
def bare_kernel(tmp_path):
    """A fresh python3 kernel of this venv, nothing loaded (one per test)."""
    with started_kernel(tmp_path) as k:
        yield k


def kernel_json(k: Kernel, expr: str):
    """Evaluate ``expr`` in the kernel and bring its JSON value back."""
    return json.loads(k.ok(f"import json as _j; print(_j.dumps({expr}))").strip().splitlines()[-1])
