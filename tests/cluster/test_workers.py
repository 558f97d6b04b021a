"""Jobs find the workers a cluster keeps, waiting for ones on their way back and not for ones
whose nanny is gone (mlkit.cluster._workers; the restart case is in tests/train/test_torch.py)."""

from __future__ import annotations

import os
import signal
import time

from tests._wait import wait_for


def test_a_worker_whose_nanny_exited_is_not_waited_for(fresh_cluster):
    from mlkit.cluster._workers import expected, live_workers

    client = fresh_cluster.client
    assert expected(client) == 2
    name, nanny = sorted(fresh_cluster.deploy.workers.items())[0]
    os.kill(nanny.pid, signal.SIGTERM)  # the nanny closes its worker and exits: never back
    wait_for(lambda: expected(client) == 1, timeout=60, what=f"nanny {name} seen as exited")
    wait_for(lambda: len(client.scheduler_info(n_workers=-1)["workers"]) == 1, timeout=60,
             what="its worker gone from the scheduler")
    start = time.monotonic()
    assert len(live_workers(client, timeout=300)) == 1
    assert time.monotonic() - start < 300  # returned with the one worker, not at the deadline
