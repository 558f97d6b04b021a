"""The cluster widget, headless: drive its state, click its buttons, read its traits."""

from __future__ import annotations

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
