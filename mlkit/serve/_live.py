"""The live state of a gateway route: replicas, request rate, latency, batch size, errors.

:class:`ServeMonitor` reads what the gateway itself exposes (its route listing and its
Prometheus ``/metrics``, with the gateway's loopback admin token) and turns two reads in a row
into rates: requests per second, p50 / p99 latency of the requests in between (from the
latency histogram, interpolated within a bucket as Prometheus' ``histogram_quantile`` does), the
mean rows per model call and the errors. The widget (:mod:`mlkit.widgets.serve`) only draws
these :class:`ServeStatus` snapshots; scripts can print them.

Examples
--------
>>> mon = ServeMonitor(srv)                 # doctest: +SKIP
>>> print(mon.poll())                       # doctest: +SKIP
gateway route /models/iris/champion (version 3): running
  replicas: 0 127.0.0.1 up, 1 127.0.0.1 up
  2.0 req/s  p50 4.1 ms  p99 9.8 ms  batch 1.3 rows  errors 0 (0 in all)  120 requests
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ServeMonitor", "ServeStatus", "ReplicaState", "histogram_quantile"]


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper_bound, count)`` buckets (Prometheus' rule).

    Examples
    --------
    >>> histogram_quantile(0.5, [(0.1, 0), (0.2, 10), (float("inf"), 10)])
    0.15
    """
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: its bound is all we know
            if count == below:
                return upper
            return round(lower + (upper - lower) * (rank - below) / (count - below), 9)
        lower, below = upper, count
    return lower


@dataclass
class ReplicaState:
    """One replica as the gateway sees it."""

    index: int
    host: str
    state: str  # "up", "starting", "down", "scaled to zero"
    pid: int | None = None
    restarts: int = 0
    inflight: int = 0


@dataclass
class ServeStatus:
    """One snapshot of a route (see the module docstring); rates are None on the first read."""

    name: str
    route: str
    version: str
    running: bool
    replicas: list[ReplicaState] = field(default_factory=list)
    requests: float = 0.0
    errors: float = 0.0
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    batch_rows: float | None = None
    errors_recent: float = 0.0
    at: float = field(default_factory=time.time)

    @staticmethod
    def _num(v: float | None, fmt: str, unit: str = "") -> str:
        return "-" if v is None else f"{v:{fmt}}{unit}"

    def _stats(self) -> list[tuple[str, str]]:
        return [("req/s", self._num(self.rps, ".1f")),
                ("p50", self._num(self.p50_ms, ".1f", " ms")),
                ("p99", self._num(self.p99_ms, ".1f", " ms")),
                ("batch", self._num(self.batch_rows, ".1f", " rows")),
                ("errors", f"{self.errors_recent:g} ({self.errors:g} in all)"),
                ("requests", f"{self.requests:g}")]

    def __str__(self) -> str:
        state = "running" if self.running else "stopped"
        reps = ", ".join(f"{r.index} {r.host} {r.state}" for r in self.replicas) or "none"
        stats = "  ".join(f"{k} {v}" for k, v in self._stats())
        return (f"gateway route {self.route} (version {self.version}): {state}\n"
                f"  replicas: {reps}\n  {stats}")

    def _repr_html_(self) -> str:
        e = html.escape
        state = "running" if self.running else "<b>stopped</b>"
        colour = {"up": "#2a7", "starting": "#c80", "down": "#b00", "scaled to zero": "#888"}
        rows = "".join(
            f"<tr><td>{r.index}</td><td><code>{e(r.host)}</code></td>"
            f"<td style='color:{colour.get(r.state, '#000')}'>{e(r.state)}</td>"
            f"<td>{r.pid or '-'}</td><td>{r.restarts}</td></tr>" for r in self.replicas)
        stats = " &nbsp; ".join(f"{k}: <b>{e(v)}</b>" for k, v in self._stats())
        return (f"<div class='mlkit-serve'><b>mlkit gateway</b> <code>{e(self.route)}</code> "
                f"version {e(self.version)}: {state}<br>"
                "<table><tr><th>replica</th><th>host</th><th>state</th><th>pid</th>"
                f"<th>restarts</th></tr>{rows}</table>{stats}</div>")


def _state(r: dict[str, Any]) -> str:
    if r.get("scaled_to_zero"):
        return "scaled to zero"
    if r.get("healthy"):
        return "up"
    return "starting" if r.get("pid") else "down"


class ServeMonitor:
    """Reads a gateway route's state; each :meth:`poll` gives a :class:`ServeStatus`.

    Parameters
    ----------
    server : mlkit.serve GatewayServer
        The handle ``serve.start(..., replicas=N)`` returned.
    """

    def __init__(self, server: Any) -> None:
        import requests

        self.server = server
        # a session of its own: the widget polls from its thread while the notebook uses the
        # handle's session (requests sessions are not made for sharing across threads)
        self._session = requests.Session()
        self._session.trust_env = False
        self._prev: tuple[float, dict[str, Any]] | None = None
        self.last: ServeStatus | None = None

    def _route(self) -> dict[str, Any] | None:
        entry = self.server.to_dict()
        data = self._session.get(
            f"{self.server.gateway_url}/admin/routes", timeout=5,
            headers={"x-mlkit-admin": self.server._admin_token()}).json()
        for r in data.get("routes", []):
            if r["name"] == entry["route_name"] and r["labels"][0] == entry["route_labels"][0]:
                return r
        return None

    def _route_served(self) -> bool:
        """Whether the route is still in the running list (``serve.stop`` removes it first)."""
        from mlkit.serve import _running

        entry = self.server.to_dict()
        return entry.get("name") in _running.read(home=entry.get("home"))

    def _counters(self, model: str, version: str) -> dict[str, Any]:
        from prometheus_client.parser import text_string_to_metric_families

        text = self._session.get(
            f"{self.server.gateway_url}/metrics", timeout=5,
            headers={"x-mlkit-admin": self.server._admin_token()}).text
        out: dict[str, Any] = {"requests": 0.0, "errors": 0.0, "rows_sum": 0.0,
                               "rows_count": 0.0, "buckets": {}}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.labels.get("model") != model or s.labels.get("version") != version:
                    continue
                if s.name == "mlkit_gateway_requests_total":
                    # what a replica answered, and refusals; not the gateway's own /ping probes
                    if s.labels.get("replica") != "-" or int(s.labels.get("status", 0)) >= 400:
                        out["requests"] += s.value
                elif s.name == "mlkit_gateway_request_errors_total":
                    out["errors"] += s.value
                elif s.name == "mlkit_gateway_batch_rows_sum":
                    out["rows_sum"] += s.value
                elif s.name == "mlkit_gateway_batch_rows_count":
                    out["rows_count"] += s.value
                elif s.name == "mlkit_gateway_request_duration_seconds_bucket":
                    le = float(s.labels["le"])
                    out["buckets"][le] = out["buckets"].get(le, 0.0) + s.value
        return out

    def poll(self) -> ServeStatus:
        """Read the gateway once (a stopped gateway gives the last numbers, ``running=False``)."""
        entry = self.server.to_dict()
        route_path = str(entry.get("route", ""))
        alive = self.server.alive()
        try:
            route = self._route() if alive else None
            if route is None:
                raise LookupError("route gone")
            now = time.monotonic()
            c = self._counters(route["name"], str(route["version"]))
        except Exception:  # noqa: BLE001 - stopped or going away: the final state is static
            last = self.last
            if alive and last is not None and last.running and self._route_served():
                # A gateway that is alive but slow to answer (a busy machine, a replica being
                # restarted) has not stopped: keep the last numbers, and stay live.
                return last
            st = ServeStatus(entry["name"], route_path,
                             last.version if last else str(entry.get("version") or "-"), False,
                             [ReplicaState(r.index, r.host, "stopped", None, r.restarts)
                              for r in (last.replicas if last else [])],
                             *((last.requests, last.errors, last.rps, last.p50_ms, last.p99_ms,
                                last.batch_rows, last.errors_recent) if last else ()))
            self.last = st
            return st
        reps = [ReplicaState(int(r["replica"]), str(r.get("host") or "-"), _state(r),
                             r.get("pid"), int(r.get("restarts", 0)), int(r.get("inflight", 0)))
                for r in route["replicas"]]
        prev = self._prev if self._prev and self._prev[1].get("version") == route["version"] \
            else None
        c["version"] = route["version"]
        if prev is None:  # first read: what happened since the gateway started
            base: dict[str, Any] = {"requests": 0.0, "errors": 0.0, "rows_sum": 0.0,
                                    "rows_count": 0.0, "buckets": {}}
            dt = None
        else:
            base, dt = prev[1], now - prev[0]
        dreq = c["requests"] - base["requests"]
        buckets = [(le, n - base["buckets"].get(le, 0.0)) for le, n in c["buckets"].items()]
        p50 = histogram_quantile(0.5, buckets)
        p99 = histogram_quantile(0.99, buckets)
        drows, dcount = c["rows_sum"] - base["rows_sum"], c["rows_count"] - base["rows_count"]
        st = ServeStatus(
            entry["name"], f"/models/{route['name']}/{route['labels'][0]}",
            str(route["version"]), True, reps, c["requests"], c["errors"],
            rps=(dreq / dt) if dt else None,
            p50_ms=None if p50 is None else p50 * 1000, p99_ms=None if p99 is None else p99 * 1000,
            batch_rows=(drows / dcount) if dcount else None,
            errors_recent=c["errors"] - base["errors"])
        self._prev = (now, c)
        self.last = st
        return st
