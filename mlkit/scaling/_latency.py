"""Latency of a served model under concurrent clients: a threaded HTTP client.

Each client is one thread with its own ``requests.Session`` (keep-alive, as a real caller);
the threads start together (a barrier) and send their requests one after the other, each a
one-row ``POST /invocations``. Threads rather than asyncio so the same code runs inside a
notebook's running event loop, in scripts and in Dask-free tests; the waiting happens in the
socket calls, which release the GIL.

Examples
--------
>>> out = measure(srv.url, body, clients=8, requests=30)   # doctest: +SKIP
>>> sorted(out)                                           # doctest: +SKIP
['p50_ms', 'p99_ms', 'requests', 'requests_per_s', 'seconds']
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mlkit.exceptions import ServeError

__all__ = ["CLIENT", "measure"]

#: How the report describes its client.
CLIENT = "threaded (one thread + requests.Session per client, one-row requests)"


def measure(
    url: str, body: str, clients: int, requests: int, *, timeout: float = 60.0
) -> dict[str, float]:
    """p50 / p99 latency (ms) and requests/s of ``clients`` concurrent clients.

    Parameters
    ----------
    url : str
        Base URL of the scoring server (``POST URL/invocations``).
    body : str
        The JSON request body (MLflow's format), sent as is.
    clients, requests : int
        Concurrent clients, and requests each one sends.
    timeout : float
        Seconds one request may take.

    Raises
    ------
    ServeError
        A request was refused (its HTTP status and the server's message) or failed.
    """
    import numpy as np
    import requests as http

    barrier = threading.Barrier(clients)
    headers = {"Content-Type": "application/json"}
    results: list[Any] = [None] * clients

    def client(i: int) -> None:
        try:
            session = http.Session()
            session.trust_env = False  # loopback: never through an HTTP proxy
            session.post(f"{url}/invocations", data=body, headers=headers, timeout=timeout)
            barrier.wait()
            start = time.perf_counter()
            latencies = []
            for _ in range(requests):
                t0 = time.perf_counter()
                resp = session.post(
                    f"{url}/invocations", data=body, headers=headers, timeout=timeout
                )
                latencies.append(time.perf_counter() - t0)
                if resp.status_code != 200:
                    raise ServeError(
                        f"the served model refused a request (HTTP {resp.status_code}): "
                        f"{resp.text[:500]}"
                    )
            results[i] = (start, time.perf_counter(), latencies)
            session.close()
        except BaseException as exc:  # handed to the caller below
            barrier.abort()
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if errors:
        exc = (real or errors)[0]
        if isinstance(exc, ServeError):
            raise exc
        raise ServeError(f"requests to {url} failed: {type(exc).__name__}: {exc}") from exc
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    lat = np.concatenate([r[2] for r in results]) * 1000.0
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "requests": float(len(lat)),
        "requests_per_s": float(len(lat) / max(end - start, 1e-9)),
        "seconds": float(end - start),
    }
