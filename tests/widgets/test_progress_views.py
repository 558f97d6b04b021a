"""The display layer headless: bundles carry static HTML beside the widget view, finished work
ends static, early stopping is a success, the tune clock ticks, help text is whole."""

from __future__ import annotations

import re

from mlkit._display import WIDGET_VIEW_MIME, ProgressBar, ProgressState, mimebundle
from mlkit.train._progress import Progress
from mlkit.tune._progress import TrialRow, TuneProgress
from mlkit.widgets.tune import TuneWidget, static_bundle
from tests._wait import wait_for


def test_bundle_holds_widget_view_and_static_forms():
    import ipywidgets

    w = ipywidgets.IntProgress(value=3, max=5)
    data = mimebundle("<b>3 / 5</b>", "3 / 5", w)
    assert data[WIDGET_VIEW_MIME]["model_id"] == w.model_id
    assert data["text/html"] == "<b>3 / 5</b>" and data["text/plain"] == "3 / 5"
    assert WIDGET_VIEW_MIME not in mimebundle("<b>x</b>", "x")


def test_early_stopping_is_a_success_with_the_best_round():
    p = Progress(150, "xgboost", enabled=False)
    for r in range(1, 73):
        p.update(r, {"valid-logloss": 1.0 / r if r <= 62 else 1.0 / 62 + (r - 62) * 1e-3})
    p.close("early", best=62)
    st = p.state
    assert st.status == "early" and st.fraction == 1.0  # a full bar, not 48 %
    assert st.headline() == "xgboost: stopped early at round 72, best 62 (72/150 rounds)"
    assert st.best_metrics() == {"valid-logloss": 1.0 / 62}
    from mlkit._display import progress_html

    html = progress_html(st)
    assert 'data-status="early"' in html and "#4caf50" in html and "#f44336" not in html


def test_interrupted_and_failed_runs_are_not_green():
    from mlkit._display import progress_html

    for status, color in (("stopped", "#ff9800"), ("failed", "#f44336")):
        st = ProgressState("torch", total=10, unit="epoch")
        st.update(4, {"loss": 0.5})
        st.finish(status)
        html = progress_html(st)
        assert color in html and "#4caf50" not in html
        assert "width:40%" in html


def test_history_chart_marks_the_best_round():
    from mlkit.widgets.history import history_svg

    h = [(r, {"valid-auc": 0.9 + r / 1000, "train-auc": 0.95}) for r in range(1, 1001)]
    svg = history_svg(h, best=640)
    assert svg.count("<svg") == 2  # one chart per metric
    assert "best round 640: 1.54" in svg
    # thinned to a bounded number of points
    assert max(len(p.split(" L")) for p in re.findall(r'd="M([^"]+)"', svg)) <= 400


def test_text_bar_outside_a_kernel(capsys):
    st = ProgressState("sweep nb", total=2, unit="job")
    bar = ProgressBar(st)
    st.update(2, {"ok": 2, "not_ok": 0})
    bar.refresh()
    bar.close("finished")
    err = capsys.readouterr().err
    assert "sweep nb" in err and "2/2" in err


def test_tune_clock_ticks_before_any_trial_finishes():
    p = TuneProgress("clock", total=4, directions=["minimize"])
    p.running = 2
    w = TuneWidget(p, tick=0.05)
    try:
        first = w.summary.value
        assert "2 running" in first and "no trial finished yet" in first

        def seconds() -> float:
            return float(re.search(r"([\d.]+) s", w.summary.value).group(1))

        wait_for(lambda: seconds() >= 0.3, timeout=10, what="the tune clock to tick")
        assert w.count.value == "0 / 4 trials"
    finally:
        p.finish()
        w.close()
    frozen = w.summary.value
    assert "running" not in frozen
    assert w._thread is not None and not w._thread.is_alive()


def test_finished_study_bundle_is_static_with_plot_and_table():
    p = TuneProgress("done", total=3, directions=["maximize"])
    for n, v in enumerate((0.2, 0.9, 0.5)):
        p.record(TrialRow(n, "COMPLETE", (v,), {"x": n}, "tcp://w", 0.1))
    p.finish()
    data = static_bundle(p)
    assert WIDGET_VIEW_MIME not in data
    assert data["text/html"].count("<circle") == 3
    assert re.findall(r"<tr><td>(\d+)</td>", data["text/html"]) == ["1", "2", "0"]
    assert "best 0.9 (trial 1)" in data["text/plain"]
    before = p.elapsed
    assert p.elapsed == before  # the clock stopped with the study


def test_help_summaries_are_whole_plain_sentences(shell, capsys):
    shell.run_line_magic("mlscale", "help")
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out
    # the data summary used to stop after "top": now whole, wrapped under its column
    joined = " ".join(line.strip() for line in out.splitlines())
    assert "min/max/mean, top categories), shown as a table." in joined
    assert "Tune the objective(trial) function the cell defines" in joined
    shell.run_line_magic("mlscale", "help tune")
    assert "``" not in capsys.readouterr().out
