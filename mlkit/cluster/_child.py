"""Entry point of every scheduler / nanny process that mlkit's local cluster starts.

``python -m mlkit.cluster._child PARENT_PID spec [dask spec arguments]`` runs distributed's own
``dask spec`` command with one addition: a watchdog thread that ends the process (and its own
process group: the nanny's worker process) when the process that started it is gone. The local
cluster's processes live in a session of their own so that the kernel's Interrupt (SIGINT to the
kernel's process group) never reaches them; the watchdog makes sure that a killed or crashed
kernel still leaves no orphan behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

# How often the watchdog looks for its parent, and how long a graceful close may take before
# the whole process group is killed.
_POLL_SECONDS = 0.5
_GRACE_SECONDS = 10.0


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL_SECONDS)
    # Orphaned: ask distributed to close cleanly (dask spec handles SIGTERM), then make sure.
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_GRACE_SECONDS)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    """Start the watchdog, then run ``dask spec`` with the remaining arguments."""
    parent = int(argv[0])
    if os.getppid() != parent:  # the parent died before we even started
        sys.exit(0)
    threading.Thread(target=_watch, args=(parent,), name="mlkit-parent-watch", daemon=True).start()
    from distributed.cli.dask_spec import main as spec_main

    spec_main(argv[2:] if argv[1:2] == ["spec"] else argv[1:], prog_name="dask spec")


if __name__ == "__main__":
    main(sys.argv[1:])
