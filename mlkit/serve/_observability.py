"""``mlkit serve observability DIR``: a Prometheus scrape configuration and a Grafana dashboard.

Writes ``DIR/prometheus.yml`` (scrape jobs for every running gateway's ``/metrics`` and, when
given, the Dask scheduler's ``/metrics`` on its dashboard port) and
``DIR/grafana-dashboard.json`` (requests/s, errors/s, p50/p99 latency per model and version,
batch rows and queue depth per replica, healthy replicas, cold starts). Gateways that check API
keys are scraped with ``authorization: {credentials_file: ...}``: put a key in that file
(``mlkit serve keys create prometheus > DIR/gateway.key``).

Examples
--------
>>> write_configs("obs", gateways=["127.0.0.1:8000"])      # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_configs", "dashboard"]


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int) -> dict:
    return {
        "id": pid, "type": "timeseries", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": legend}
                    for i, (e, legend) in enumerate(exprs)],
    }


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard (JSON model) for mlkit's gateway metrics."""
    by = "model, version"
    panels = [
        _panel(1, "Requests per second", [
            (f"sum by ({by}) (rate(mlkit_gateway_requests_total[1m]))", "{{model}} v{{version}}"),
        ], "reqps", 0, 0),
        _panel(2, "Errors per second (HTTP >= 400)", [
            (f"sum by ({by}, status) (rate(mlkit_gateway_request_errors_total[1m]))",
             "{{model}} v{{version}} {{status}}"),
        ], "reqps", 12, 0),
        _panel(3, "Latency p50 / p99", [
            (f"histogram_quantile(0.5, sum by ({by}, le) "
             "(rate(mlkit_gateway_request_duration_seconds_bucket[1m])))", "p50 {{model}}"),
            (f"histogram_quantile(0.99, sum by ({by}, le) "
             "(rate(mlkit_gateway_request_duration_seconds_bucket[1m])))", "p99 {{model}}"),
        ], "s", 0, 8),
        _panel(4, "Rows per model call (mean) by replica", [
            ("sum by (model, replica) (rate(mlkit_gateway_batch_rows_sum[1m])) / "
             "sum by (model, replica) (rate(mlkit_gateway_batch_rows_count[1m]))",
             "{{model}} replica {{replica}}"),
        ], "short", 12, 8),
        _panel(5, "Queue depth by replica", [
            ("mlkit_gateway_queue_depth", "{{model}} replica {{replica}}"),
        ], "short", 0, 16),
        _panel(6, "Healthy replicas, restarts, cold starts", [
            ("mlkit_gateway_replicas_healthy", "healthy {{model}}"),
            ("sum by (model) (increase(mlkit_gateway_replica_restarts_total[5m]))",
             "restarts {{model}}"),
            ("sum by (model) (increase(mlkit_gateway_cold_start_seconds_count[5m]))",
             "cold starts {{model}}"),
        ], "short", 12, 16),
        _panel(7, "Dask scheduler: tasks by state", [
            ("sum by (state) (dask_scheduler_tasks)", "{{state}}"),
        ], "short", 0, 24),
    ]
    return {
        "title": "mlkit serving", "uid": "mlkit-serving", "schemaVersion": 39, "version": 1,
        "refresh": "10s", "time": {"from": "now-30m", "to": "now"}, "panels": panels,
        "templating": {"list": [{"name": "datasource", "type": "datasource",
                                 "query": "prometheus", "label": "Prometheus"}]},
    }


def write_configs(out_dir: str | Path, gateways: list[str] | None = None,
                  scheduler: str | None = None, auth_gateways: list[str] | None = None,
                  scrape_interval: str = "5s") -> dict[str, Path]:
    """Write ``prometheus.yml`` and ``grafana-dashboard.json`` into ``out_dir``.

    Parameters
    ----------
    gateways : list of str
        ``HOST:PORT`` of gateways to scrape (default: every running mlkit gateway).
    scheduler : str, optional
        ``HOST:PORT`` of the Dask dashboard whose ``/metrics`` to scrape.
    auth_gateways : list of str
        Gateways among ``gateways`` that need an API key (read from ``gateway.key``).

    Examples
    --------
    >>> sorted(write_configs("obs", gateways=["127.0.0.1:8000"]))    # doctest: +SKIP
    ['dashboard', 'prometheus']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if gateways is None:
        from mlkit.serve import _running

        running = [e for e in _running.read().values() if e.get("kind") == "gateway"]
        gateways = [f"{e['host']}:{e['port']}" for e in running]
        auth_gateways = [f"{e['host']}:{e['port']}" for e in running if e.get("auth")]
    auth = set(auth_gateways or [])
    lines = ["# written by `mlkit serve observability`", "global:",
             f"  scrape_interval: {scrape_interval}", "  evaluation_interval: 15s",
             "scrape_configs:"]
    plain = [g for g in gateways if g not in auth]
    if plain:
        lines += ["  - job_name: mlkit-gateway", "    metrics_path: /metrics",
                  "    static_configs:", f"      - targets: {json.dumps(plain)}"]
    if auth:
        lines += ["  - job_name: mlkit-gateway-keyed", "    metrics_path: /metrics",
                  "    authorization:", "      type: Bearer",
                  f"      credentials_file: {json.dumps(str((out / 'gateway.key').resolve()))}",
                  "    static_configs:", f"      - targets: {json.dumps(sorted(auth))}"]
    if scheduler:
        lines += ["  - job_name: dask-scheduler", "    metrics_path: /metrics",
                  "    static_configs:", f"      - targets: {json.dumps([scheduler])}"]
    prom = out / "prometheus.yml"
    prom.write_text("\n".join(lines) + "\n")
    dash = out / "grafana-dashboard.json"
    dash.write_text(json.dumps(dashboard(), indent=2) + "\n")
    return {"prometheus": prom, "dashboard": dash}
