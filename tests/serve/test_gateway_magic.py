"""``%mlscale serve MODEL --replicas N --max-batch-rows R``: parsing only, then one API call."""

from __future__ import annotations

import pytest


def test_magic_serve_replicas_parses_then_calls_start(shell, monkeypatch):
    import mlkit.serve

    calls = []
    monkeypatch.setattr(mlkit.serve, "start", lambda *a, **k: calls.append((a, k)) or "handle")
    out = shell.run_line_magic(
        "mlscale", "serve models:/iris@champion --replicas 2 --max-batch-rows 64 "
                   "--max-wait-ms 2.5 --api-keys")
    assert out == "handle"
    assert calls == [(("models:/iris@champion",), {
        "port": 0, "host": "127.0.0.1", "workers": 1, "name": None, "log_predictions": False,
        "metrics": False, "replicas": 2, "max_batch_rows": 64, "max_wait_ms": 2.5,
        "api_keys": True, "gateway": None, "scale_to_zero": None})]
    calls.clear()
    shell.run_line_magic("mlscale", "serve models:/iris/2 --gateway iris-champion "
                                    "--scale-to-zero 10m --timeout 600")
    assert calls[0][1]["scale_to_zero"] == "10m" and calls[0][1]["timeout"] == 600.0
    assert calls[0][1]["gateway"] == "iris-champion" and calls[0][1]["replicas"] == 1
    assert calls[0][1]["api_keys"] is None


def test_magic_serve_on_cluster_parses_then_calls_start(shell, monkeypatch):
    import mlkit.serve

    calls = []
    monkeypatch.setattr(mlkit.serve, "start", lambda *a, **k: calls.append((a, k)) or "handle")
    assert shell.run_line_magic("mlscale", "serve models:/iris@champion --on cluster") == "handle"
    assert calls[0][1]["on"] == "cluster" and calls[0][1]["replicas"] is None
    shell.run_line_magic("mlscale", "serve models:/iris@champion --on cluster --replicas 3 "
                                    "--max-batch-rows 32")
    assert calls[1][1]["replicas"] == 3 and calls[1][1]["max_batch_rows"] == 32


@pytest.mark.parametrize("line, pattern", [
    ("serve models:/a@b --replicas 2 --on moon", "--on must be 'local' or 'cluster', got 'moon'"),
    ("serve models:/a@b --replicas 0", "positive"),
    ("serve models:/a@b --replicas 2 --max-batch-rows x", "max-batch-rows"),
    ("serve models:/a@b --replicas 2 --max-wait-ms 5000", "--max-wait-ms is 0..1000"),
])
def test_magic_serve_replicas_mistakes_are_usage_errors(shell, mlkit_home, line, pattern):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=pattern):
        shell.run_line_magic("mlscale", line)
