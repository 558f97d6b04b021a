"""mlkit's cluster compute (what every data pass runs through) leaves nothing behind on the
workers: once the results are back, the workers drop them, also when the work was slow enough
to show a progress bar. Results kept alive after the call used to pile up pass after pass (a fit
runs several) until workers at a tight memory_limit were restarted."""

from __future__ import annotations

import gc
import uuid

from tests._wait import wait_for


def _slow_block(i: int, delay: float):
    import time

    import numpy as np

    time.sleep(delay)
    return np.full(50_000, float(i))


def _held(prefix: str, dask_worker=None) -> int:
    return sum(str(key).startswith(prefix) for key in dask_worker.data)


def test_results_leave_the_workers_once_the_call_returns(client):
    from dask import delayed

    from mlkit._display import QUIET_SECONDS
    from mlkit.data._progress import compute

    prefix = f"release-{uuid.uuid4().hex[:8]}"
    # Longer than the quiet period, so the path that decides to show a bar is the one taken.
    tasks = [delayed(_slow_block, pure=False)(i, QUIET_SECONDS + 0.5 if i == 0 else 0.0,
                                              dask_key_name=f"{prefix}-{i}") for i in range(8)]
    enabled = gc.isenabled()
    gc.disable()  # nothing may rely on the client's garbage collector happening to run
    try:
        results = compute(*tasks, client=client)
        assert [float(r[0]) for r in results] == [float(i) for i in range(8)]
        assert wait_for(lambda: sum(client.run(_held, prefix).values()) == 0, timeout=60,
                        what="the workers to drop the results")
        assert not [k for k in client.futures if str(k).startswith(prefix)]
    finally:
        if enabled:
            gc.enable()
