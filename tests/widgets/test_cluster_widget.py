"""The cluster widget, headless: drive its state, click its buttons, read its traits."""

from __future__ import annotations

import re

import mlkit
from mlkit.widgets.cluster import ClusterWidget
from tests._wait import wait_for, wait_until_false


def test_widget_shows_workers_memory_and_dashboard_state(cluster):
    w = ClusterWidget(cluster, autostart=False)
    st = w.last_status
    assert st.n_workers == 2
    assert "workers: <b>2</b>" in w.summary.value and "threads: <b>2</b>" in w.summary.value
    assert 0.0 <= w.memory_bar.value <= 1.0
    assert "/ 3.73 GiB" in w.memory_label.value  # 2 x 2 GB limit
    assert "no GPUs" in w.gpu_table.value
    assert w.scale_box.value == 2 and not w.scale_button.disabled


def test_scale_button_scales_the_real_cluster(fresh_cluster):
    w = ClusterWidget(fresh_cluster, autostart=False)
    w.scale_box.value = 3
    w.scale_button.click()
    assert mlkit.cluster.status().n_workers == 3
    assert "workers: <b>3</b>" in w.summary.value and "scaled to 3" in w.message.value


def test_scale_errors_show_in_the_widget_not_as_exceptions(cluster):
    w = ClusterWidget(cluster, autostart=False)
    w.cluster = type(
        "Broken",
        (),
        {
            "status": cluster.status,
            "kind": "local",
            "deploy": object(),
            "scale": lambda self, n: (_ for _ in ()).throw(RuntimeError("no capacity")),
        },
    )()
    w.scale_button.click()
    assert "no capacity" in w.message.value


def test_background_refresh_follows_the_cluster_and_stops_with_it(fresh_cluster):
    w = ClusterWidget(fresh_cluster, interval=0.2)
    assert w.refreshing
    fresh_cluster.client.submit(lambda: 1).result()
    mlkit.cluster.scale(1)
    wait_for(lambda: "workers: <b>1</b>" in w.summary.value, what="the widget showing 1 worker")
    w.stop_button.click()
    assert fresh_cluster.closed and mlkit.cluster.current() is None
    wait_until_false(lambda: w.refreshing, what="the refresh loop stopped")
    assert "stopped" in w.summary.value and w.stop_button.disabled and w.scale_button.disabled


def test_handle_caches_one_widget(cluster):
    a = cluster.widget()
    try:
        assert cluster.widget() is a
    finally:
        a.stop()


def test_text_and_html_fallbacks(cluster, capsys):
    html = cluster._repr_html_()
    assert "mlkit cluster" in html and "<table>" in html
    text = str(cluster)
    assert "workers: 2" in text and "threads: 2" in text
    cluster._ipython_display_()  # outside a kernel: prints the text summary
    assert "mlkit cluster (local)" in capsys.readouterr().out


def test_one_row_per_gpu_is_drawn(cluster):
    from mlkit.cluster import ClusterStatus, GPUInfo, WorkerStatus

    w = ClusterWidget(cluster, autostart=False)
    gpus = [
        GPUInfo(i, "NVIDIA H100 80GB HBM3", f"GPU-{i}", 80 * 2**30, 2**30 * i, 7 * i)
        for i in (0, 1)
    ]
    st = ClusterStatus(
        "cuda",
        "tcp://127.0.0.1:1",
        None,
        [
            WorkerStatus(str(i), f"tcp://127.0.0.1:{10 + i}", 1, 0, 2**30, gpus=[g])
            for i, g in enumerate(gpus)
        ],
    )
    w.draw(st)
    assert w.gpu_table.value.count("<tr><td>GPU ") == 2
    assert "NVIDIA H100 80GB HBM3" in w.gpu_table.value and "7%" in w.gpu_table.value
    assert "dashboard: off" in w.dashboard.value


def test_api_scale_redraws_the_live_widget_at_once(fresh_cluster):
    w = fresh_cluster.widget()
    w.stop()  # no background refresh: the redraw must come from the scale itself
    mlkit.cluster.scale(3)
    assert w.scale_box.value == 3 and "workers: <b>3</b>" in w.summary.value


def test_scale_magic_updates_the_one_widget_instead_of_printing_a_table(fresh_cluster, shell):
    w = fresh_cluster.widget()
    w.stop()
    # outside a kernel the magic still returns the status (terminal users see a table) ...
    assert shell.run_line_magic("mlscale", "scale 1").n_workers == 1
    # ... and the one live widget follows, box included
    assert w.scale_box.value == 1 and "workers: <b>1</b>" in w.summary.value


def test_stopped_widget_is_clean(fresh_cluster):
    w = fresh_cluster.widget()
    w.stop()
    address = fresh_cluster.address
    mlkit.cluster.down()
    assert "?" not in w.title.value and address in w.title.value
    assert w.summary.value == "<b>stopped</b>"
    assert w.scale_box.disabled and w.scale_button.disabled and w.stop_button.disabled
    assert w.dashboard.value == "" and w.memory_label.value == ""
    bundle = w._static_bundle()
    assert "stopped" in bundle["text/html"] and "?" not in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" not in bundle


def test_dashboard_link_is_a_styled_anchor(cluster):
    from mlkit.cluster._status import ClusterStatus

    w = ClusterWidget(cluster, autostart=False)
    st = cluster.status()
    w.draw(ClusterStatus(st.kind, st.address, "http://127.0.0.1:8787/status", st.workers))
    assert re.search(
        r'<a href="http://127\.0\.0\.1:8787/status" target="_blank" rel="noopener" '
        r'style="color:var\(--jp-content-link-color,#1976d2\);text-decoration:underline">',
        w.dashboard.value,
    )


def test_widget_bundle_carries_the_static_status(cluster):
    w = ClusterWidget(cluster, autostart=False)
    data = w._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == w.box.model_id
    assert "workers: 2" in data["text/html"] and "workers: 2" in data["text/plain"]


def test_dashboard_link_follows_dask_config(monkeypatch):
    import dask.config

    import mlkit.cluster._dashboard as dash

    monkeypatch.setenv("MLKIT_DASHBOARD", "1")
    mlkit.cluster.down()
    c = mlkit.cluster.up(workers=1, threads_per_worker=1, memory_limit="1GB")
    try:
        port = c.client.scheduler_info()["services"]["dashboard"]
        assert c.status().dashboard_link == f"http://127.0.0.1:{port}/status"
        # jupyter-server-proxy present and the setting left at Dask's default: via the proxy
        monkeypatch.setattr(dash, "server_proxy_installed", lambda: True)
        assert c.status().dashboard_link == f"/proxy/{port}/status"
        monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
        assert c.status().dashboard_link == f"/user/ada/proxy/{port}/status"
        # a setting the user (or the hub) made wins, formatted by distributed itself
        with dask.config.set({"distributed.dashboard.link": "https://hub.example/{port}/x"}):
            assert c.status().dashboard_link == f"https://hub.example/{port}/x"
    finally:
        mlkit.cluster.down()
