"""The gateway's Prometheus metrics (prometheus_client), labelled by model, version and replica.

``mlkit_gateway_requests_total{model,version,replica,status}``,
``mlkit_gateway_request_errors_total{model,version,status}`` (status >= 400),
``mlkit_gateway_request_duration_seconds{model,version}`` (histogram),
``mlkit_gateway_batch_rows{model,version,replica}`` (histogram of the rows in the model call
that answered each request, from the replica's ``x-mlkit-batch-rows`` header),
``mlkit_gateway_queue_depth{model,version,replica}`` (requests waiting in the replica's batcher,
as of its last answer), ``mlkit_gateway_replicas_healthy{model,version}``,
``mlkit_gateway_retries_total{model,version}``,
``mlkit_gateway_cold_start_seconds{model,version}`` (scale to zero: the waking request's wait)
and
``mlkit_gateway_replica_restarts_total{model,version,replica}``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GatewayMetrics"]

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class GatewayMetrics:
    """One registry for the gateway process; ``render()`` gives the exposition text."""

    def __init__(self) -> None:
        from prometheus_client import (
            GC_COLLECTOR,
            PLATFORM_COLLECTOR,
            PROCESS_COLLECTOR,
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
        )

        self.registry = reg = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            reg.register(collector)
        self.requests = Counter("mlkit_gateway_requests", "Requests answered by the gateway",
                                ["model", "version", "replica", "status"], registry=reg)
        self.errors = Counter("mlkit_gateway_request_errors",
                              "Requests answered with HTTP status >= 400",
                              ["model", "version", "status"], registry=reg)
        self.latency = Histogram("mlkit_gateway_request_duration_seconds",
                                 "Time to answer a request at the gateway, in seconds",
                                 ["model", "version"], buckets=_LATENCY, registry=reg)
        self.batch_rows = Histogram("mlkit_gateway_batch_rows",
                                    "Rows in the model call that answered a request",
                                    ["model", "version", "replica"], buckets=_ROWS, registry=reg)
        self.queue_depth = Gauge("mlkit_gateway_queue_depth",
                                 "Requests waiting in the replica's batcher (last answer)",
                                 ["model", "version", "replica"], registry=reg)
        self.healthy = Gauge("mlkit_gateway_replicas_healthy", "Replicas taking traffic",
                             ["model", "version"], registry=reg)
        self.retries = Counter("mlkit_gateway_retries",
                               "Requests retried on another replica after a connection failure",
                               ["model", "version"], registry=reg)
        self.cold_start = Histogram("mlkit_gateway_cold_start_seconds",
                                    "Wait of the request that woke a pool scaled to zero",
                                    ["model", "version"],
                                    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
                                    registry=reg)
        self.restarts = Counter("mlkit_gateway_replica_restarts",
                                "Replicas started again after they exited",
                                ["model", "version", "replica"], registry=reg)
        self._children: dict[tuple[str, str, str, int], list[Any]] = {}

    def observe(self, model: str, version: str, replica: str, status: int, seconds: float,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Count one answered request; ``headers``: the replica's answer headers (raw pairs).

        Examples
        --------
        >>> m = GatewayMetrics()
        >>> m.observe("iris", "1", "0", 200, 0.004, [(b"x-mlkit-batch-rows", b"3")])
        >>> b'mlkit_gateway_batch_rows_sum{model="iris",replica="0",version="1"} 3.0' in m.render()
        True
        """
        # prometheus_client's labels() validates and locks on every call: the children of a
        # label set are looked up once and kept (a few per route; statuses are few)
        key = (model, version, replica, status)
        kids = self._children.get(key)
        if kids is None:
            kids = self._children[key] = [
                self.requests.labels(model, version, replica, str(status)),
                self.latency.labels(model, version),
                self.errors.labels(model, version, str(status)) if status >= 400 else None,
                None, None]  # batch rows and queue depth: once a replica reports them
        kids[0].inc()
        kids[1].observe(seconds)
        if kids[2] is not None:
            kids[2].inc()
        if headers:
            rows = depth = None
            for k, v in headers:
                if k == b"x-mlkit-batch-rows":
                    rows = v
                elif k == b"x-mlkit-queue-depth":
                    depth = v
            if rows is not None:
                if kids[3] is None:
                    kids[3] = self.batch_rows.labels(model, version, replica)
                    kids[4] = self.queue_depth.labels(model, version, replica)
                kids[3].observe(float(rows))
                if depth is not None:
                    kids[4].set(float(depth))

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
