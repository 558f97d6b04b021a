"""The scaling report as one self-contained HTML file: inline CSS, the figures as base64 PNGs,
no script, no external link, so it opens anywhere (an e-mail, an MLflow artifact view, offline).

Examples
--------
>>> text = document(report)                    # doctest: +SKIP
>>> "http" in text.split("<body>")[1]          # doctest: +SKIP
False
"""

from __future__ import annotations

import base64
import html
from typing import Any

__all__ = ["document", "fragment", "table_html", "EFFICIENCY_NOTE"]

EFFICIENCY_NOTE = (
    "Each throughput has an ideal line: linear scaling from the smallest worker count measured, "
    "ideal(n) = measured(n0) &times; n / n0. Efficiency is measured / ideal: 1.0 means every "
    "added worker gave as much as the first ones, 0.5 at 2 workers means the second worker added "
    "nothing. Small sizes mostly measure fixed costs (scheduling, starting a collective, a "
    "server's request handling), so a real workload's efficiency is higher than a small run's; "
    "workers that share the same cores (a busy machine) cannot scale at all."
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;
max-width:72em}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2} td:first-child,th:first-child{text-align:left}
.meta td{text-align:left} .note{color:#444;font-size:.9em;max-width:60em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
"""


def table_html(table: Any) -> str:
    """The tidy table as an HTML table (numbers rounded for reading; the data keep full
    precision)."""
    import pandas as pd

    shown = table.copy().astype(object)
    for col, digits in (("value", 4), ("ideal", 4), ("efficiency", 3), ("seconds", 2)):
        shown[col] = [("" if pd.isna(v) else f"{v:.{digits}g}") for v in table[col]]
    for col in ("clients", "train_rows"):
        shown[col] = [("" if pd.isna(v) else str(int(v))) for v in table[col]]
    return shown.to_html(index=False, border=0, escape=True, na_rep="")


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def fragment(report: Any) -> str:
    """The report's body (meta, figures, table): also what a notebook shows for it."""
    meta = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in report.meta.items()
    )
    figures = "".join(
        f"<h2>{html.escape(name)}</h2>{_img(png, name)}" for name, png in report.pngs.items()
    )
    return (
        f'<table class="meta">{meta}</table>'
        f'<p class="note">{EFFICIENCY_NOTE}</p>'
        f"{figures}<h2>table</h2>{table_html(report.table)}"
    )


def document(report: Any) -> str:
    """The whole HTML document of ``report``."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>mlkit scaling report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>mlkit scaling report</h1>"
        f"{fragment(report)}</body></html>\n"
    )
