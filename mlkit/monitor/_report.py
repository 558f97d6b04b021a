"""``DriftReport``: the result of :func:`mlkit.monitor.drift`, for people and for MLflow.

One report has four faces: a notebook view (``_repr_html_``: verdict, table, histogram overlays
with drifted features first), a self-contained HTML file (``save``), metrics plus the HTML in an
MLflow run (``log``), and a pandas table (``to_pandas``). ``str(report)`` is the terminal view the
``mlkit monitor`` command prints.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlkit.monitor._drift import FeatureDrift
from mlkit.monitor._plots import feature_img, have_matplotlib
from mlkit.monitor._profile import _save_text

__all__ = ["DriftReport"]

_COLUMNS = [
    "feature", "kind", "test", "statistic", "p_value", "psi", "js_distance", "drifted",
    "n_reference", "n_current", "missing_reference", "missing_current", "exact",
]


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if x != 0 and abs(x) < 10 ** (-digits):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


def _metric_key(text: str) -> str:
    # MLflow metric names allow letters, digits and _ - . space : /
    return re.sub(r"[^A-Za-z0-9_\-. :]", "_", text)


class DriftReport:
    """Per-feature drift results and the overall verdict.

    Attributes
    ----------
    features : list of FeatureDrift
        Drifted features first, then by ascending p-value.
    drifted : bool
        True when any feature drifted.
    skipped : list of str
        Reference features absent from the current data (not compared).
    thresholds : dict
        The thresholds used; ``alpha`` is the per-feature p-value threshold after correction.

    Examples
    --------
    >>> report = mlkit.monitor.drift(reference, current)   # doctest: +SKIP
    >>> report                                              # doctest: +SKIP
    >>> report.to_pandas().head()                            # doctest: +SKIP
    >>> report.save("drift.html"); report.log()             # doctest: +SKIP
    """

    def __init__(
        self,
        features: Sequence[FeatureDrift],
        *,
        thresholds: Mapping[str, Any],
        alpha: float | None,
        rows_reference: int,
        rows_current: int,
        skipped: Sequence[str] = (),
        created: str | None = None,
    ) -> None:
        def order(r: FeatureDrift) -> tuple[Any, ...]:
            p = r.p_value if not math.isnan(r.p_value) else 2.0
            return (not r.drifted, p, r.feature)

        self.features = sorted(features, key=order)
        self.thresholds = dict(thresholds)
        self.alpha = alpha
        self.rows_reference = rows_reference
        self.rows_current = rows_current
        self.skipped = list(skipped)
        self.created = created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    # -- verdict -------------------------------------------------------------------------------
    @property
    def drifted(self) -> bool:
        """The overall verdict: True if any feature drifted."""
        return any(r.drifted for r in self.features)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features, most significant first."""
        return [r.feature for r in self.features if r.drifted]

    def __getitem__(self, name: str) -> FeatureDrift:
        for r in self.features:
            if r.feature == name:
                return r
        names = [r.feature for r in self.features]
        raise KeyError(f"no feature {name!r} in this report; it has {names}")

    @property
    def verdict(self) -> str:
        n, k = len(self.drifted_features), len(self.features)
        if n:
            return f"DRIFT: {n} of {k} features drifted ({', '.join(self.drifted_features)})"
        return f"no drift: 0 of {k} features drifted"

    # -- tables --------------------------------------------------------------------------------
    def to_pandas(self) -> Any:
        """One row per feature (drifted first) as a pandas DataFrame.

        Examples
        --------
        >>> report.to_pandas()[["feature", "p_value", "drifted"]]   # doctest: +SKIP
        """
        import pandas as pd

        rows = [{c: getattr(r, c) for c in _COLUMNS} for r in self.features]
        return pd.DataFrame(rows, columns=_COLUMNS)

    def to_frame(self) -> Any:
        """Deprecated name of :meth:`to_pandas` (every mlkit table comes back by ``to_pandas``)."""
        import warnings

        warnings.warn("DriftReport.to_frame() is now .to_pandas()", DeprecationWarning,
                      stacklevel=2)
        return self.to_pandas()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (NaN becomes None)."""

        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and math.isnan(v) else v

        return {
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
            "thresholds": self.thresholds,
            "alpha": self.alpha,
            "skipped": self.skipped,
            "created": self.created,
            "features": [
                {**{c: clean(getattr(r, c)) for c in _COLUMNS}, "reasons": r.reasons}
                for r in self.features
            ],
        }

    def __str__(self) -> str:
        head = ["feature", "kind", "test", "statistic", "p_value", "PSI/JS", "drifted"]
        body = [
            [r.feature, r.kind, r.test, _fmt(r.statistic), _fmt(r.p_value),
             _fmt(r.psi if r.kind == "numeric" else r.js_distance), "yes" if r.drifted else "no"]
            for r in self.features
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
                 for row in [head, *body]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        out = [self.verdict,
               f"reference rows: {self.rows_reference:,}   current rows: {self.rows_current:,}",
               "", *lines]
        if self.skipped:
            out += ["", f"not compared (absent from the current data): {', '.join(self.skipped)}"]
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<DriftReport {self.verdict}>"

    # -- HTML ----------------------------------------------------------------------------------
    def _table_html(self) -> str:
        e = html.escape
        head = "".join(f"<th>{h}</th>" for h in
                       ("feature", "kind", "test", "statistic", "p-value", "PSI / JS",
                        "missing (ref / cur)", "drifted", "why"))
        rows = []
        for r in self.features:
            badge = ('<span style="color:#fff;background:#d62728;padding:0 6px;'
                     'border-radius:3px">yes</span>' if r.drifted else "no")
            effect = r.psi if r.kind == "numeric" else r.js_distance
            stat = _fmt(r.statistic) + ("" if r.exact or math.isnan(r.statistic_upper)
                                        else f" (&le; {_fmt(r.statistic_upper)})")
            rows.append(
                f"<tr><td><b>{e(r.feature)}</b></td><td>{r.kind}</td><td>{r.test}</td>"
                f"<td>{stat}</td><td>{_fmt(r.p_value)}</td><td>{_fmt(effect)}</td>"
                f"<td>{_fmt(r.missing_reference, 2)} / {_fmt(r.missing_current, 2)}</td>"
                f"<td>{badge}</td><td>{e('; '.join(r.reasons))}</td></tr>"
            )
        return (
            '<table class="mlkit-drift" style="border-collapse:collapse;font-size:12px">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def html(self, max_plots: int = 40) -> str:
        """The report as an HTML fragment (what the notebook shows).

        Parameters
        ----------
        max_plots : int
            Histogram overlays drawn at most (drifted features come first).
        """
        e = html.escape
        color = "#d62728" if self.drifted else "#2ca02c"
        th = self.thresholds
        alpha = f"{self.alpha:.3g}" if self.alpha is not None else "off"
        parts = [
            '<div class="mlkit-drift-report" style="font-family:sans-serif">',
            f'<h3 style="color:{color};margin:4px 0">{e(self.verdict)}</h3>',
            f"<p style='font-size:12px;margin:2px 0'>reference rows: {self.rows_reference:,}"
            f" &middot; current rows: {self.rows_current:,} &middot; p-value threshold per "
            f"feature: {alpha} ({th['correction']} of {th['pvalue']}) &middot; PSI &ge; "
            f"{th['psi']} &middot; JS &ge; {th['js']} (samples &ge; {th['min_rows']:,} rows)</p>",
            self._table_html(),
        ]
        if self.skipped:
            parts.append(f"<p style='font-size:12px'>not compared (absent from the current "
                         f"data): {e(', '.join(self.skipped))}</p>")
        if have_matplotlib():
            imgs = [feature_img(r.feature, r.kind, r.plot) for r in self.features[:max_plots]]
            parts.append('<div style="display:flex;flex-wrap:wrap;gap:4px">'
                         + "".join(imgs) + "</div>")
            if len(self.features) > max_plots:
                parts.append(f"<p style='font-size:12px'>{len(self.features) - max_plots} "
                             "more features not drawn</p>")
        else:
            parts.append("<p style='font-size:12px'><i>install matplotlib to see histogram "
                         "overlays</i></p>")
        parts.append("</div>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return self.html()

    def save(self, path: str | os.PathLike[str], max_plots: int = 200) -> Path:
        """Write a self-contained HTML file (images embedded); atomic: temp file, then rename.

        Examples
        --------
        >>> report.save("drift.html")    # doctest: +SKIP
        """
        path = Path(path)
        doc = (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.verdict)}</title>"
            "<style>table.mlkit-drift td,table.mlkit-drift th{border:1px solid #ddd;"
            "padding:2px 6px;text-align:left}</style></head>\n<body>\n"
            f"{self.html(max_plots=max_plots)}\n<p style='font-size:11px;color:#777'>"
            f"mlkit drift report, {html.escape(self.created)}</p>\n</body></html>\n"
        )
        _save_text(path, doc)
        return path

    def metrics(self, prefix: str = "drift") -> dict[str, float]:
        """The numbers :meth:`log` records, as ``{metric name: value}``."""
        out: dict[str, float] = {
            f"{prefix}/drifted": float(self.drifted),
            f"{prefix}/n_drifted": float(len(self.drifted_features)),
            f"{prefix}/share_drifted": len(self.drifted_features) / max(1, len(self.features)),
        }
        for r in self.features:
            key = f"{prefix}/{_metric_key(r.feature)}"
            values = {"statistic": r.statistic, "p_value": r.p_value, "psi": r.psi,
                      "js_distance": r.js_distance, "drifted": float(r.drifted)}
            for k, v in values.items():
                if not math.isnan(v):
                    out[f"{key}/{k}"] = float(v)
        return out

    def log(self, run_id: str | None = None, prefix: str = "drift") -> str:
        """Record the report in MLflow: metrics per feature and the HTML (plus JSON) artifact.

        Logs to ``run_id``, else the active run, else a new run named ``drift-report`` (through
        :func:`mlkit.track.run`). Returns the run id.

        Examples
        --------
        >>> with mlkit.track.run("weekly-check"):    # doctest: +SKIP
        ...     report.log()
        """
        from mlkit._imports import require

        mlflow = require("mlflow")
        from mlkit import track

        track.configure()
        if run_id is None and mlflow.active_run() is None:
            with track.run("drift-report") as run:
                return self.log(run.info.run_id, prefix=prefix)
        if run_id is None:
            run_id = mlflow.active_run().info.run_id
        from mlkit.track._writer import RunWriter

        writer = RunWriter(run_id, mlflow.get_tracking_uri())
        writer.metrics(self.metrics(prefix))
        writer.flush()
        mlflow.log_text(self._document(), f"{prefix}/drift_report.html", run_id=run_id)
        mlflow.log_dict(self.to_dict(), f"{prefix}/drift_report.json", run_id=run_id)
        return run_id

    def _document(self) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return self.save(Path(tmp) / "report.html").read_text(encoding="utf-8")
