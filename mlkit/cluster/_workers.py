"""The workers a job starts on, waiting a moment for ones that are on their way back.

A worker leaves the scheduler and comes back by itself more often than one might think: its
nanny restarts it after a memory kill, and after a laptop wakes from sleep (or a VM resumes)
the scheduler drops every worker whose heartbeat is older than its TTL and their nannies start
them again. A job that asks in that window would find no workers, or fewer than the cluster
has, and fail with "the cluster has no workers". So it waits, bounded, for the count the
cluster's manager is keeping (its nannies); a joined scheduler keeps no such count, and then
at least one worker is waited for.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["expected", "live_workers"]

RETURN_TIMEOUT_S = 60.0


def expected(client: Any) -> int:
    """How many workers the cluster behind ``client`` keeps: its manager's count, else 1.

    Examples
    --------
    >>> expected(None)
    1
    """
    deploy = getattr(client, "cluster", None)  # set when the client was made from a manager
    if deploy is None:
        from mlkit.cluster._core import current

        c = current()
        if c is not None and client is not None and c.client is client:
            deploy = c.deploy
    workers = getattr(deploy, "workers", None)
    if not isinstance(workers, dict):
        return 1
    return max(1, sum(_coming_back(w) for w in workers.values()))


def _coming_back(worker: Any) -> bool:
    """False for a worker its manager has given up on: an exited process (mlkit's isolated
    nannies) or a closed Nanny object (distributed's managers)."""
    if getattr(getattr(worker, "process", None), "returncode", None) is not None:
        return False
    status = getattr(getattr(worker, "status", None), "name", "")
    return status not in ("closed", "closing", "failed", "closing_gracefully")


def live_workers(client: Any, *,
                 timeout: float = RETURN_TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """The scheduler's workers (address -> info), once as many as :func:`expected` have joined
    or ``timeout`` seconds have passed (then whatever is there, possibly nothing).

    Examples
    --------
    >>> import mlkit
    >>> c = mlkit.cluster.up(workers=2)                       # doctest: +SKIP
    >>> len(live_workers(c.client))                           # doctest: +SKIP
    2
    """
    info = client.scheduler_info(n_workers=-1)["workers"]
    want = expected(client)
    if len(info) < want:
        with contextlib.suppress(TimeoutError):  # then the job runs on whatever is there
            client.wait_for_workers(want, timeout=timeout)
        info = client.scheduler_info(n_workers=-1)["workers"]
    return dict(info)
