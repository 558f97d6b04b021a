"""Run the stages of ``make test`` in two lanes at once, so that neither core waits.

Usage: ``python tests/_lanes.py LOG 'lane 1 commands' 'lane 2 commands'``. Each lane is one shell
command line (stages joined by ``;``, so a failing stage never hides the next one). Lane 1 prints
as it runs; lane 2 writes to LOG, which is printed, under a header, once both lanes are done. The
exit status is always 0: the JUnit reports decide, read by ``tests/_summary.py``.

Why two lanes: measured on the 2-core CI machine, one stage at a time leaves about a third of the
CPU idle (processes waiting for servers, kernels and workers to start), so two stages side by side
end sooner than one after the other. Every stage keeps its own JUnit report.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path


def main(args: list[str]) -> int:
    log, first, second = Path(args[0]), args[1], args[2]
    start = time.monotonic()
    # Popen from Python, not `&` in make's shell: a shell without job control starts background
    # commands with SIGINT ignored, and the tests that press Ctrl-C (or interrupt a kernel) need it.
    with log.open("w") as out:
        background = subprocess.Popen(second, shell=True, stdout=out, stderr=subprocess.STDOUT)
        ended: list[float] = []
        waiter = threading.Thread(target=lambda: (background.wait(),
                                                  ended.append(time.monotonic() - start)))
        waiter.start()
        subprocess.run(first, shell=True, check=False)
        first_s = time.monotonic() - start
        waiter.join()
    second_s = ended[0]
    print(f"\n======== lane 2 ({second_s:.0f} s; lane 1 took {first_s:.0f} s): {log} ========",
          flush=True)
    sys.stdout.write(log.read_text(errors="replace"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
