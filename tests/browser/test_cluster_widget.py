"""The cluster widget in a real JupyterLab: what it shows, its Scale and Stop controls, the
``%mlscale scale`` magic, and a page reload. The tests run in order on one notebook, as a user
works down it."""

from __future__ import annotations

import re
import time
import urllib.request

from tests._wait import wait_for
from tests.browser._lab import WIDGET_ERROR, Cell, Notebook

NOTEBOOK = "cluster.ipynb"
UP = "%mlscale up --workers 2 --threads 1"


def workers_shown(widget) -> int | None:
    m = re.search(r"workers:\s*(\d+)", widget.first.text_content() or "")
    return int(m.group(1)) if m else None


def cluster_widget(nb: Notebook, index: int):
    return Cell(nb, index).widget("mlkit cluster")


def up_cell(nb: Notebook) -> int:
    return nb.up_index  # type: ignore[attr-defined]


def test_cluster_widget_appears_with_two_workers(nb: Notebook):
    t0 = time.monotonic()
    idle_after = nb.open()
    nb.run("%load_ext mlkit")
    cell = nb.run(UP, wait=False)
    nb.up_index = cell.index  # type: ignore[attr-defined]
    widget = cell.widget("mlkit cluster")
    widget.first.wait_for(state="visible", timeout=120_000)
    visible_after = time.monotonic() - t0
    print(
        f"\nnotebook open -> widget visible: {visible_after:.1f} s "
        f"(kernel idle after {idle_after:.1f} s)"
    )
    cell.wait_done()
    wait_for(lambda: workers_shown(widget) == 2, timeout=60, what="the widget to read workers: 2")
    assert nb.value('len(client.scheduler_info()["workers"])') == "2"
    assert WIDGET_ERROR not in nb.text()


def test_dashboard_link_opens_the_dask_dashboard(nb: Notebook):
    link = cluster_widget(nb, up_cell(nb)).locator("a", has_text="http")
    href = link.first.get_attribute("href")
    assert href and re.match(r"http://127\.0\.0\.1:\d+/status$", href), href
    assert nb.value("client.dashboard_link") == href
    with urllib.request.urlopen(href, timeout=30) as r:
        assert r.status == 200
        assert "Dask" in r.read().decode(errors="replace")


def test_dashboard_link_looks_like_a_link(nb: Notebook):
    link = cluster_widget(nb, up_cell(nb)).locator("a", has_text="http").first
    style = link.evaluate(
        """a => {
            const s = getComputedStyle(a), p = getComputedStyle(a.parentElement);
            return {color: s.color, parent: p.color, line: s.textDecorationLine,
                    cursor: s.cursor};
        }"""
    )
    # A user tells a link from text by its colour or its underline.
    assert style["color"] != style["parent"] or "underline" in style["line"], style


def test_scale_button_scales_the_cluster(nb: Notebook):
    widget = cluster_widget(nb, up_cell(nb))
    box = widget.locator("input[type=number]").first
    box.fill("3")
    box.press("Tab")  # ipywidgets syncs a text box's value on change (blur/Enter)
    widget.locator("button", has_text="Scale").click()
    wait_for(lambda: workers_shown(widget) == 3, timeout=120, what="the widget to read workers: 3")
    assert "scaled to 3 workers" in (widget.first.text_content() or "")
    assert nb.value('len(client.scheduler_info()["workers"])') == "3"


def test_scale_magic_updates_the_live_widget(nb: Notebook):
    widget = cluster_widget(nb, up_cell(nb))
    nb.run("%mlscale scale 2")
    assert nb.value('len(client.scheduler_info()["workers"])') == "2"
    wait_for(lambda: workers_shown(widget) == 2, timeout=60, what="the live widget: workers: 2")
    box = widget.locator("input[type=number]").first
    wait_for(lambda: box.input_value() == "2", timeout=30, what="the live widget's box at 2")
    live = (
        nb.page.locator(".jp-OutputArea-output > .jupyter-widgets")
        .filter(has_text="mlkit cluster")
        .filter(has=nb.page.locator("button", has_text="Stop"))
    )
    assert live.count() == 1, f"{live.count()} live cluster widgets; the issue asks for one"


def test_reload_keeps_the_live_widget_and_the_kernel(nb: Notebook):
    nb.save()  # what JupyterLab's autosave does; a reload shows the notebook as on disk
    t0 = time.monotonic()
    nb.reload()
    widget = cluster_widget(nb, up_cell(nb))
    widget.first.wait_for(state="visible", timeout=120_000)
    print(f"\npage reload -> widget visible: {time.monotonic() - t0:.1f} s")
    wait_for(lambda: workers_shown(widget) == 2, timeout=60, what="workers: 2 after reload")
    assert WIDGET_ERROR not in nb.text()
    assert nb.value('len(client.scheduler_info()["workers"])') == "2"


def test_stop_button_stops_the_cluster_and_leaves_a_clean_widget(nb: Notebook):
    widget = cluster_widget(nb, up_cell(nb))
    widget.locator("button", has_text="Stop").click()
    wait_for(
        lambda: "stopped" in (widget.first.text_content() or ""),
        timeout=120,
        what="the widget to read stopped",
    )
    assert nb.value("__import__('mlkit').cluster.current()") == "None"
    text = widget.first.text_content() or ""
    assert "?" not in text, f"the stopped widget shows '?': {text!r}"
    assert widget.locator("input[type=number]").first.is_disabled(), "workers box still editable"
    for name in ("Scale", "Stop"):
        assert widget.locator("button", has_text=name).first.is_disabled(), f"{name} enabled"
