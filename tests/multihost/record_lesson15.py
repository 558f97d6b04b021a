"""Record the remote-cluster cells of tutorials/15_beyond_one_machine.ipynb on the test hosts.

A lesson that runs under nbval has one machine only, so the cells that need workers on other
hosts are shown with outputs recorded here, for real: this script builds the same test hosts as
``tests/multihost`` (scheduler, worker1, worker2 and client, each with its own disk; moto's S3
server on the scheduler host; Debian's sshd on the three cluster hosts), runs each cell in an
IPython shell on the client host, exactly as written in the lesson, and prints what it printed.
With ``--write`` it also puts each cell and its output into the lesson's markdown cell that
carries the same ``mlkit_recorded`` key in its metadata (nothing else in the notebook changes).

Needs root (network namespaces), like the multi-host tests::

    .venv/bin/python tests/multihost/record_lesson15.py            # print only
    .venv/bin/python tests/multihost/record_lesson15.py --write    # and update the lesson
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _hosts  # noqa: E402
import _ssh  # noqa: E402

from conftest import HOST_ENV, HOSTS, S3_PORT, WORKER_HOSTS  # noqa: E402

LESSON = _hosts.REPO / "tutorials" / "15_beyond_one_machine.ipynb"
SCRIPT = "tests/multihost/record_lesson15.py"
SCHED = f"tcp://{_hosts.SUBNET}.10:8786"
CLUSTER_ADDRS = ",".join(f"{_hosts.SUBNET}.{10 + i}" for i in range(3))

# (key, the cell exactly as the lesson shows it, seconds it may take). Run in order, in one
# IPython shell on the client host: each sees what the ones before it defined.
CELLS: list[tuple[str, str, float]] = [
    ("connect", f"%mlscale connect {SCHED}\n"
                "print(mlkit.cluster.status())", 180),
    ("preflight", "pf = mlkit.cluster.current().preflight\n"
                  "print('hosts:', pf.hosts, '| client on', pf.client_host)\n"
                  "print('shared disk:', pf.shared_disk, '| remote:', pf.remote)\n"
                  "for m in pf.missing:\n"
                  "    print('missing:', m)", 60),
    ("refused", "mlkit.data.synthetic('/tmp/work/data/syn', rows=1000)", 60),
    ("nothing_written",
     "print('anything written on the client:', os.path.exists('/tmp/work/data'))", 30),
    ("store", "mlkit.config.set_store('s3://mlkit/store')\n"
              "p = mlkit.data.synthetic(mlkit.config.store_path('data', 'syn'), rows=5_000,"
              " features=3,\n"
              "                         partitions=2, progress=False)\n"
              "print(p, len(mlkit.data.read(p)), 'rows')\n"
              "pf = mlkit.cluster.current().preflight\n"
              "print('store reached by every worker:', pf.store_shared)\n"
              "print(*pf.lines(), sep='\\n')", 180),
    ("home_store", "home_path = mlkit.config.home_path() / 'data' / 'demo'\n"
                   "print(home_path)\n"
                   "print(mlkit.data.synthetic(str(home_path), rows=1_000, features=2,"
                   " progress=False))", 120),
    ("tracking", f"%mlscale connect {SCHED} --tracking server --replace\n"
                 "srv = mlkit.track.tracking_server()\n"
                 "print(srv.url, '| auth:', srv.auth)\n"
                 "print(*mlkit.cluster.current().preflight.lines(), sep='\\n')", 900),
    ("tracking_run", "def on_worker():\n"
                     "    import socket, mlflow, mlkit\n"
                     "    with mlkit.track.run('from-a-worker') as r:\n"
                     "        mlflow.log_metric('loss', 0.5)\n"
                     "    return socket.gethostname(), r.info.run_id\n"
                     "host, run_id = client.submit(on_worker, pure=False).result()\n"
                     "import mlflow\n"
                     "print('logged on', host, '-> seen by the notebook:',"
                     " mlflow.get_run(run_id).info.status)\n"
                     "print('stopped:', mlkit.track.stop_tracking())", 300),
    ("env_up", "%mlscale down\n"
               f"os.environ['DASK_SCHEDULER_ADDRESS'] = {SCHED!r}\n"
               "%mlscale up --workers 2\n"
               "c = mlkit.cluster.current()\n"
               "print(c.kind, c.address, '| workers on', c.preflight.hosts)\n"
               "%mlscale down\n"
               "del os.environ['DASK_SCHEDULER_ADDRESS']", 180),
    ("ssh_up", f"%mlscale up --cluster distributed.SSHCluster -o hosts=[{CLUSTER_ADDRS}]\n"
               "print(mlkit.cluster.status())", 600),
    ("ssh_down", "%mlscale down", 180),
]

SETUP = (
    "import os, mlkit\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "ip = InteractiveShell.instance(colors='NoColor')\n"
    "ip.InteractiveTB.set_mode('Minimal')\n"  # an error shows as the kernel's last line does
    "ip.displayhook.write_output_prompt = lambda: None\n"  # no 'Out[n]:' prompt in the record
    "ip.run_line_magic('load_ext', 'mlkit')\n"
    "ip.user_ns.update(os=os, mlkit=mlkit)\n"
)


def _stop_dask(net: _hosts.TestNet) -> None:
    """Stop the scheduler and workers this script started (by PID) before SSHCluster starts
    its own on the same hosts."""
    for h in ("scheduler", *WORKER_HOSTS):
        for p in net[h].procs:
            if p.poll() is None and "dask" in " ".join(map(str, p.args)):
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)


def record() -> dict[str, str]:
    reason = _hosts.why_unavailable() or _ssh.why_unavailable()
    if reason:
        sys.exit(f"cannot build the test hosts: {reason}")
    out: dict[str, str] = {}
    with _hosts.TestNet(HOSTS, tag="rec", env=HOST_ENV) as net, \
            _ssh.SSHHosts(net, ["scheduler", *WORKER_HOSTS], "client"):
        _hosts.start_moto(net["scheduler"], S3_PORT, "mlkit")
        net.start_scheduler("scheduler")
        for h in WORKER_HOSTS:
            net.start_worker(h, SCHED)
        s = _hosts.Session(net["client"])
        try:
            s.ok(SETUP + "import distributed\n"
                 f"_c = distributed.Client({SCHED!r}, timeout='30s')\n"
                 "_c.wait_for_workers(2, timeout=90)\n_c.close()", timeout=150)
            for key, code, timeout in CELLS:
                if key == "ssh_up":
                    _stop_dask(net)
                t0 = time.monotonic()
                r = s.run(f"_r = ip.run_cell({code!r})", "_r.success", timeout=timeout)
                if not r["ok"]:
                    raise RuntimeError(f"{key}: {r['type']}: {r['message']}\n{r['traceback']}")
                out[key] = r["stdout"].rstrip("\n")
                print(f"--- {key} ({time.monotonic() - t0:.1f} s, success={r['value']})\n"
                      f"{code}\n>>>\n{out[key]}\n", flush=True)
        finally:
            s.close()
    return out


def write(recorded: dict[str, str]) -> None:
    nb = json.loads(LESSON.read_text())
    code = {k: c for k, c, _ in CELLS}
    today = datetime.date.today().isoformat()
    seen = set()
    for cell in nb["cells"]:
        key = cell.get("metadata", {}).get("mlkit_recorded")
        if key is None:
            continue
        seen.add(key)
        text = (f"*Recorded on the test hosts on {today} by `{SCRIPT}` (not executed here):*\n\n"
                f"```python\n{code[key]}\n```\n```text\n{recorded[key]}\n```")
        cell["source"] = text.splitlines(keepends=True)
    missing = set(code) - seen
    if missing:
        sys.exit(f"the lesson has no recorded cell for {sorted(missing)}")
    LESSON.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(seen)} recorded cells into {LESSON}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the lesson's cells")
    parser.add_argument("--save", type=Path, help="also save the outputs as JSON here")
    parser.add_argument("--load", type=Path,
                        help="write outputs saved by an earlier --save instead of recording")
    args = parser.parse_args()
    recorded = json.loads(args.load.read_text()) if args.load else record()
    if args.save:
        args.save.write_text(json.dumps(recorded, indent=1))
    if args.write:
        write(recorded)


if __name__ == "__main__":
    main()
