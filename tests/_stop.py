"""The stop button, as tests press it: a real SIGINT to this process.

Jupyter's Interrupt sends the kernel a real SIGINT. ``_thread.interrupt_main()`` only sets
Python's pending-signal flag, which a main thread blocked in a lock wait never looks at; and
every Jupyter kernel has an event loop running in its main thread, where jupyter_core's
``run_sync`` (papermill, nbclient) waits exactly so. A real signal interrupts that wait, as it does
for the user.
"""

from __future__ import annotations

import os
import signal


def press_stop() -> None:
    """Deliver SIGINT to this process (its main thread raises KeyboardInterrupt).

    Examples
    --------
    >>> import threading
    >>> threading.Timer(0.1, press_stop).start()   # doctest: +SKIP
    """
    os.kill(os.getpid(), signal.SIGINT)
