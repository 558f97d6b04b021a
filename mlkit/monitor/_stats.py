"""The drift statistics themselves, on small summaries (counts per bin, counts per category).

Everything here works on numpy arrays a scan of the data produced; nothing here touches a
DataFrame or the cluster. The tests come from scipy (``scipy.stats.kstwo`` for the KS p-value,
``chi2_contingency``, ``jensenshannon``); PSI has no library implementation in scipy, so it is the
textbook sum, written out below.
"""

from __future__ import annotations

import math

from mlkit._imports import require

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")

# scipy is an optional extra: a missing install names the pip extra instead of an ImportError.
stats = require("scipy.stats")
jensenshannon = require("scipy.spatial.distance").jensenshannon

__all__ = [
    "PSI_EPS",
    "psi",
    "ks_from_counts",
    "ks_pvalue_asymp",
    "chi2_from_counts",
    "js_distance",
    "merge_quantiles",
    "regroup",
]

# Empty bins would make PSI infinite; the usual textbook fix clips proportions at 1e-4.
PSI_EPS = 1e-4


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index: ``sum((c - r) * ln(c / r))`` over bins of proportions.

    Proportions are clipped at ``eps`` so an empty bin gives a large but finite value.

    Examples
    --------
    >>> round(psi(np.array([50, 50]), np.array([40, 60])), 4)
    0.0405
    """
    r = np.asarray(reference_counts, dtype=float)
    c = np.asarray(current_counts, dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan
    pr = np.clip(r / r.sum(), eps, None)
    pc = np.clip(c / c.sum(), eps, None)
    return float(np.sum((pc - pr) * np.log(pc / pr)))


def ks_pvalue_asymp(d: float, n1: int, n2: int) -> float:
    """Two-sided KS p-value exactly as ``scipy.stats.ks_2samp(method="asymp")`` computes it."""
    if n1 == 0 or n2 == 0:
        return math.nan
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[float, float, float]:
    """Two-sample KS statistic from counts on a shared grid of bins ``(e[i-1], e[i]]``.

    The empirical CDFs are exact at every grid edge, so the returned statistic is the largest
    CDF gap over the edges: a lower bound of the exact statistic. The exact statistic is also at
    most the returned upper bound (inside a bin each CDF moves by at most that bin's mass), so
    ``(d, upper)`` brackets the value ``scipy.stats.ks_2samp`` would give on the raw samples.

    Returns
    -------
    (d, p_value, d_upper)
        p-value as ``ks_2samp(method="asymp")`` computes it from ``d``.

    Examples
    --------
    >>> d, p, up = ks_from_counts(np.array([5, 5, 0]), np.array([0, 5, 5]))
    >>> d, up
    (0.5, 1.0)
    """
    r = np.asarray(reference_counts, dtype=float)
    c = np.asarray(current_counts, dtype=float)
    n1, n2 = int(r.sum()), int(c.sum())
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan, math.nan
    fr = np.concatenate([[0.0], np.cumsum(r) / n1])  # CDF at -inf, e_1, ..., e_k, +inf
    fc = np.concatenate([[0.0], np.cumsum(c) / n2])
    fr[-1] = fc[-1] = 1.0
    d = float(np.max(np.abs(fr - fc)))
    upper = float(max(d, np.max(fr[1:] - fc[:-1]), np.max(fc[1:] - fr[:-1])))
    return d, ks_pvalue_asymp(d, n1, n2), upper


def chi2_from_counts(
    reference_counts: np.ndarray, current_counts: np.ndarray
) -> tuple[float, float]:
    """Chi-square test of homogeneity of two samples of categories (``chi2_contingency``).

    Categories empty in both samples are dropped; with fewer than two categories left the test
    is undefined and (0.0, 1.0) is returned (nothing can have drifted).

    Examples
    --------
    >>> stat, p = chi2_from_counts(np.array([30, 30, 40]), np.array([30, 30, 40]))
    >>> float(stat), float(p)
    (0.0, 1.0)
    """
    r = np.asarray(reference_counts, dtype=float)
    c = np.asarray(current_counts, dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan, math.nan
    keep = (r + c) > 0
    if keep.sum() < 2:
        return 0.0, 1.0
    res = stats.chi2_contingency(np.vstack([r[keep], c[keep]]))
    return float(res.statistic), float(res.pvalue)


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, so in [0, 1]) between two category distributions.

    Examples
    --------
    >>> js_distance(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    r = np.asarray(reference_counts, dtype=float)
    c = np.asarray(current_counts, dtype=float)
    if r.sum() == 0 or c.sum() == 0:
        return math.nan
    return float(jensenshannon(r / r.sum(), c / c.sum(), base=2))


def merge_quantiles(q: np.ndarray, sketches: list[tuple[int, np.ndarray]]) -> np.ndarray | None:
    """Quantiles at ``q`` of the union of samples summarised by their own quantiles at ``q``.

    Each sketch is ``(n, values_at_q)``; the union's CDF is the n-weighted mixture of the
    sketches' piecewise-linear CDFs, inverted at ``q``. Exact for a single sketch. (Dask's own
    ``DataFrame.quantile`` sorts every partition in full; mlkit only needs bin edges of roughly
    equal mass, since the counts in the bins are then computed exactly.)
    """
    live = [(n, np.asarray(v, dtype=float)) for n, v in sketches if n > 0]
    if not live:
        return None
    if len(live) == 1:
        return live[0][1]
    total = float(sum(n for n, _ in live))
    xs = np.unique(np.concatenate([v for _, v in live]))
    cdf = np.zeros_like(xs)
    for n, v in live:
        cdf += (n / total) * np.interp(xs, v, q, left=0.0, right=1.0)
    return np.interp(q, cdf, xs)


def regroup(counts: np.ndarray, fine_edges: np.ndarray, coarse_edges: np.ndarray) -> np.ndarray:
    """Sum counts on fine bins into coarse bins whose edges are a subset of the fine edges.

    Both grids are right-closed bins ``(-inf, e1], (e1, e2], ..., (ek, inf)``.

    Examples
    --------
    >>> regroup(np.array([1, 2, 3, 4]), np.array([1.0, 2.0, 3.0]), np.array([2.0]))
    array([3, 7])
    """
    upper = np.append(np.asarray(fine_edges, dtype=float), np.inf)
    target = np.searchsorted(np.asarray(coarse_edges, dtype=float), upper, side="left")
    return np.bincount(target, weights=counts, minlength=len(coarse_edges) + 1).astype(np.int64)
