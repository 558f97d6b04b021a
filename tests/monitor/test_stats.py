"""Drift statistics equal scipy and the textbook formulas on fixed fixtures (pandas input)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlkit
from mlkit.monitor import _stats


def _textbook_psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    # Decile edges of the reference (numpy's default linear quantiles), open-ended outer bins,
    # right-closed intervals (pandas.cut's default), proportions clipped at 1e-4.
    edges = np.quantile(ref, np.arange(1, bins) / bins)
    cut = [-np.inf, *edges, np.inf]
    r = pd.Series(pd.cut(ref, cut)).value_counts(sort=False).to_numpy() / len(ref)
    c = pd.Series(pd.cut(cur, cut)).value_counts(sort=False).to_numpy() / len(cur)
    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    return float(np.sum((c - r) * np.log(c / r)))


@pytest.fixture
def frames():
    rng = np.random.default_rng(42)
    ref = pd.DataFrame({
        "x": rng.normal(0, 1, 3000),
        "y": rng.exponential(2.0, 3000),
        "city": rng.choice(["paris", "rome", "oslo"], 3000, p=[0.5, 0.3, 0.2]),
    })
    cur = pd.DataFrame({
        "x": rng.normal(0.1, 1.1, 2500),
        "y": rng.exponential(2.0, 2500),
        "city": rng.choice(["paris", "rome", "oslo"], 2500, p=[0.4, 0.35, 0.25]),
    })
    return ref, cur


def test_numeric_statistics_equal_scipy_and_textbook(frames):
    ref, cur = frames
    report = mlkit.monitor.drift(ref, cur)
    for col in ("x", "y"):
        r = report[col]
        ks = stats.ks_2samp(ref[col], cur[col])
        assert r.test == "ks" and r.exact
        assert r.statistic == pytest.approx(ks.statistic, abs=1e-15)
        assert r.p_value == pytest.approx(ks.pvalue, rel=1e-12)
        assert r.psi == pytest.approx(_textbook_psi(ref[col].to_numpy(), cur[col].to_numpy()),
                                      rel=1e-12)


def test_categorical_statistics_equal_textbook(frames):
    ref, cur = frames
    r = mlkit.monitor.drift(ref, cur)["city"]
    cats = ["paris", "rome", "oslo"]
    o = np.array([[(ref.city == c).sum() for c in cats], [(cur.city == c).sum() for c in cats]],
                 dtype=float)
    expected = o.sum(1, keepdims=True) * o.sum(0, keepdims=True) / o.sum()
    chi2 = float(((o - expected) ** 2 / expected).sum())  # dof = 2: no Yates correction
    assert r.test == "chi2"
    assert r.statistic == pytest.approx(chi2, rel=1e-12)
    assert r.p_value == pytest.approx(stats.chi2.sf(chi2, df=2), rel=1e-10)
    p, q = o[0] / o[0].sum(), o[1] / o[1].sum()
    m = (p + q) / 2
    js = math.sqrt(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))
    assert r.js_distance == pytest.approx(js, rel=1e-12)


def test_psi_clips_empty_bins_and_known_value():
    # Reference uniform over 10 bins; current puts everything in the first bin.
    assert _stats.psi(np.full(10, 100), np.array([100] + [0] * 9)) == pytest.approx(
        (1 - 0.1) * math.log(1 / 0.1) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1), rel=1e-12
    )
    assert _stats.psi(np.array([50, 50]), np.array([50, 50])) == 0.0


def test_profile_ks_equals_scipy_asymp_when_grid_holds_every_value():
    # Integer data with few distinct values: the quantile grid contains every value, so the
    # binned statistic is the exact one and the p-value is scipy's asymptotic formula.
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"k": rng.poisson(4, 5000)})
    cur = pd.DataFrame({"k": rng.poisson(4.3, 4000)})
    prof = mlkit.monitor.reference_profile(ref)
    r = mlkit.monitor.drift(prof, cur)["k"]
    ks = stats.ks_2samp(ref.k, cur.k, method="asymp")
    assert not r.exact
    assert r.statistic == pytest.approx(ks.statistic, abs=1e-12)
    assert r.p_value == pytest.approx(ks.pvalue, rel=1e-9)


def test_profile_ks_brackets_the_exact_statistic():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.standard_t(4, 20_000)})
    for shift in (0.0, 0.05, 0.3):
        cur = pd.DataFrame({"x": rng.standard_t(4, 15_000) + shift})
        r = mlkit.monitor.drift(mlkit.monitor.reference_profile(ref), cur)["x"]
        exact = stats.ks_2samp(ref.x, cur.x).statistic
        assert r.statistic <= exact + 1e-12 <= r.statistic_upper + 2e-12
        assert r.statistic_upper - r.statistic < 0.01  # resolution 1000: gaps of ~2/1000


def test_ks_from_counts_small_example():
    # Samples 1,1,2,2 and 2,2,3,3 on edges [1, 2]: the gap at the edges is 0.5; inside (1, 2]
    # the counts cannot tell where the values lie, so the gap could reach 1.0.
    d, p, upper = _stats.ks_from_counts(np.array([2, 2, 0]), np.array([0, 2, 2]))
    assert (d, upper) == (0.5, 1.0)
    assert p == pytest.approx(stats.ks_2samp([1, 1, 2, 2], [2, 2, 3, 3], method="asymp").pvalue)


def test_merge_quantiles_recovers_quantiles_of_the_union():
    rng = np.random.default_rng(0)
    parts = [rng.normal(m, 1, n) for m, n in [(0, 4000), (1, 6000), (-2, 2000)]]
    q = np.linspace(0, 1, 201)
    merged = _stats.merge_quantiles(q, [(len(p), np.quantile(p, q)) for p in parts])
    truth = np.quantile(np.concatenate(parts), q)
    # Rank error, not value error, is what matters for bin edges.
    ranks = np.searchsorted(np.sort(np.concatenate(parts)), merged) / 12000
    assert np.max(np.abs(ranks[1:-1] - q[1:-1])) < 0.01
    assert merged[0] == truth[0] and merged[-1] == truth[-1]
    single = np.quantile(parts[0], q)
    assert np.array_equal(_stats.merge_quantiles(q, [(4000, single)]), single)


def test_regroup_sums_fine_bins():
    counts = np.array([1, 2, 3, 4, 5])
    fine = np.array([1.0, 2.0, 3.0, 4.0])
    assert _stats.regroup(counts, fine, np.array([2.0, 4.0])).tolist() == [3, 7, 5]
    assert _stats.regroup(counts, fine, np.array([])).tolist() == [15]
