"""Exact medians of dask columns in a few passes of small per-partition statistics.

Dask's quantiles are approximate. An exact median needs the values around the middle rank, so
this narrows in on them: a pass for count / min / max, a histogram pass (4,096 bins) that finds
the bin(s) holding the middle rank(s), then a pass that brings back only the distinct values of
that narrow window (with their counts) and how many values lie below it. A window still too wide
(e.g. a heavy tail squeezing the bins) gets another histogram pass inside it. Memory stays
bounded by the bin count and the window size; the result equals ``numpy.median`` of the
non-missing values.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from mlkit._imports import require
from mlkit.data._prep.base import Partial, numeric_block
from mlkit.exceptions import DataError

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")
pd = require("pandas")

__all__ = ["exact_medians"]

_BINS = 4096
_WINDOW = 262_144  # largest count of values one column's window may bring back


def exact_medians(
    columns: list[str], who: str, first: Partial | None = None
) -> Generator[Partial, list, tuple[np.ndarray, np.ndarray, Any]]:
    """Fit generator: returns (medians, counts, extra) where ``extra`` is the combined result of
    ``first`` (an optional partial the caller wants evaluated in the first pass as well)."""

    def moments(pdf: pd.DataFrame) -> tuple:
        x = numeric_block(pdf, columns, who)
        with np.errstate(all="ignore"):
            lo = np.nanmin(x, axis=0) if len(x) else np.full(x.shape[1], np.nan)
            hi = np.nanmax(x, axis=0) if len(x) else np.full(x.shape[1], np.nan)
        return (~np.isnan(x)).sum(axis=0), lo, hi, first(pdf) if first else None

    results = yield moments
    counts = np.sum([r[0] for r in results], axis=0)
    lo = np.fmin.reduce([r[1] for r in results])
    hi = np.fmax.reduce([r[2] for r in results])
    extra = [r[3] for r in results]
    k = len(columns)
    for j in range(k):
        if np.isinf(lo[j]) or np.isinf(hi[j]):
            raise DataError(
                f"{who}: column {columns[j]!r} holds infinite values ({lo[j]} .. {hi[j]}); "
                "replace them (e.g. with NaN) first"
            )
    # 0-based ranks of the middle value(s)
    ranks = [(int((n - 1) // 2), int(n // 2)) for n in counts]
    medians = np.full(k, np.nan)
    # per column: window [a, b], values strictly below a, done?
    a = lo.copy()
    b = hi.copy()
    below = np.zeros(k, dtype=np.int64)
    inside = counts.copy()
    rounds = np.zeros(k, dtype=np.int64)
    todo = [j for j in range(k) if counts[j] > 0]
    for j in todo:
        if lo[j] == hi[j]:
            medians[j] = lo[j]
    todo = [j for j in todo if lo[j] != hi[j]]

    while todo:
        # Refining stops after a few rounds: a window that stays crowded is made of ties, which
        # the collect pass brings back compressed (distinct values with counts).
        wide = [j for j in todo if inside[j] > _WINDOW and rounds[j] < 4 and a[j] < b[j]]
        if wide:
            edges = {j: np.linspace(a[j], b[j], _BINS + 1) for j in wide}

            def histogram(pdf: pd.DataFrame, edges: dict = edges) -> dict:
                x = numeric_block(pdf, [columns[j] for j in edges], who)
                out = {}
                for i, (j, e) in enumerate(edges.items()):
                    v = x[:, i]
                    v = v[(v >= e[0]) & (v <= e[-1])]
                    out[j] = np.histogram(v, bins=e)[0]
                return out

            results = yield histogram
            for j in wide:
                hist = np.sum([r[j] for r in results], axis=0)
                cum = below[j] + np.cumsum(hist)
                r1, r2 = ranks[j]
                b1 = int(np.searchsorted(cum, r1, side="right"))
                b2 = int(np.searchsorted(cum, r2, side="right"))
                e = edges[j]
                before = int(cum[b1 - 1]) if b1 > 0 else int(below[j])
                # np.histogram's last bin is closed; the others are half-open [e_i, e_i+1)
                a[j], b[j] = e[b1], e[b2 + 1]
                below[j] = before
                inside[j] = int(cum[b2] - before)
                rounds[j] += 1
            continue

        window = {j: (a[j], b[j]) for j in todo}

        def collect(pdf: pd.DataFrame, window: dict = window) -> dict:
            x = numeric_block(pdf, [columns[j] for j in window], who)
            out = {}
            for i, (j, (lo_j, hi_j)) in enumerate(window.items()):
                v = x[:, i]
                v = v[~np.isnan(v)]
                sel = v[(v >= lo_j) & (v <= hi_j)]
                out[j] = (int((v < lo_j).sum()), *np.unique(sel, return_counts=True))
            return out

        results = yield collect
        for j in todo:
            n_below = sum(r[j][0] for r in results)
            values = np.concatenate([r[j][1] for r in results])
            weights = np.concatenate([r[j][2] for r in results])
            order = np.argsort(values, kind="stable")
            values, weights = values[order], weights[order]
            cum = n_below + np.cumsum(weights)
            r1, r2 = ranks[j]
            m1 = values[np.searchsorted(cum, r1, side="right")]
            m2 = values[np.searchsorted(cum, r2, side="right")]
            medians[j] = m1 if r1 == r2 else (m1 + m2) / 2.0
        todo = []
    return medians, counts, extra
