"""``drift``: does the current data still look like the reference data, feature by feature?

Numeric features: the two-sample Kolmogorov-Smirnov test and the population stability index (PSI)
on reference-quantile bins. Categorical features: the chi-square test of homogeneity and the
Jensen-Shannon distance. A feature drifts when its test's p-value is below the (family-wise)
significance level, or when its effect size (PSI / JS distance) crosses its threshold on samples
large enough for the effect size to be trusted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.exceptions import ConfigError, DataError
from mlkit.monitor import _scan, _stats
from mlkit.monitor._profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    _check_frame,
    _check_int,
    build,
    default_features,
    load_profile,
)

if TYPE_CHECKING:
    from mlkit.monitor._report import DriftReport

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")

__all__ = ["drift", "FeatureDrift", "DEFAULT_THRESHOLDS", "check_thresholds"]

DEFAULT_THRESHOLDS: dict[str, Any] = {
    # Family-wise significance level of the KS / chi-square tests over all features tested.
    "pvalue": 0.05,
    # "bonferroni": each feature is tested at pvalue / n_features, so a dataset with 20
    # unchanged features raises a false alarm at most 5% of the time (not 64%). "none": pvalue.
    "correction": "bonferroni",
    # PSI >= 0.2 is the conventional "significant shift" of credit-scoring practice.
    "psi": 0.2,
    # Jensen-Shannon distance (base 2, in [0, 1]) of the category distributions.
    "js": 0.1,
    # PSI and JS are biased upwards on small samples (E[PSI] ~ (bins-1)(1/n + 1/m)); below this
    # many rows in either sample only the p-value decides.
    "min_rows": 1000,
}


def check_thresholds(thresholds: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge user thresholds over the defaults, validating every value.

    Examples
    --------
    >>> check_thresholds({"psi": 0.1})["psi"]
    0.1
    """
    out = dict(DEFAULT_THRESHOLDS)
    if thresholds is None:
        return out
    if not isinstance(thresholds, Mapping):
        raise ConfigError(f"thresholds must be a dict, but got {thresholds!r}")
    unknown = sorted(set(thresholds) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ConfigError(
            f"unknown threshold(s) {unknown}; known ones are {sorted(DEFAULT_THRESHOLDS)}"
        )
    for key, value in thresholds.items():
        if key == "correction":
            if value not in ("bonferroni", "none"):
                raise ConfigError(
                    f"thresholds['correction'] must be 'bonferroni' or 'none', but got {value!r}"
                )
        elif key == "min_rows":
            _check_int("thresholds['min_rows']", value, 0)
        elif value is not None:
            bad = isinstance(value, bool) or not isinstance(value, int | float)
            if bad or not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"thresholds[{key!r}] must be a positive number or None (criterion off), "
                    f"but got {value!r}"
                )
            if key in ("pvalue", "js") and value >= 1:
                raise ConfigError(f"thresholds[{key!r}] must be below 1, but got {value!r}")
        out[key] = value
    return out


@dataclass
class FeatureDrift:
    """The drift verdict for one feature, with the numbers behind it.

    ``test`` is ``"ks"`` (numeric) or ``"chi2"`` (categorical); ``statistic`` / ``p_value`` are
    that test's. ``psi`` (numeric) and ``js_distance`` (categorical) are effect sizes.
    ``exact`` is False when the KS statistic was evaluated on the reference's fine quantile grid
    (data not in memory, or a saved profile); it then lies in ``[statistic, statistic_upper]``.
    """

    feature: str
    kind: str
    test: str
    statistic: float
    p_value: float
    drifted: bool
    reasons: list[str]
    n_reference: int
    n_current: int
    missing_reference: float
    missing_current: float
    psi: float = math.nan
    js_distance: float = math.nan
    exact: bool = True
    statistic_upper: float = math.nan
    # What the report's histogram overlay draws: bin labels or edges and both counts.
    plot: dict[str, Any] = field(default_factory=dict, repr=False)


def _missing_frac(nulls: int, n: int) -> float:
    total = nulls + n
    return nulls / total if total else math.nan


def _resolve_features(
    profile_names: Sequence[str],
    current: Any,
    features: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    columns = {str(c) for c in current.columns}
    if features is None:
        names = [f for f in profile_names if f in columns]
        skipped = [f for f in profile_names if f not in columns]
        if not names:
            raise DataError(
                f"the current data shares no column with the reference (reference: "
                f"{list(profile_names)}, current: {sorted(columns)})"
            )
        return names, skipped
    if isinstance(features, str):
        features = [features]
    features = list(features)
    if not features:
        raise ConfigError("features must name at least one column, but got an empty list")
    not_ref = [f for f in features if f not in profile_names]
    if not_ref:
        raise DataError(
            f"the reference has no feature(s) {not_ref}; it has {list(profile_names)}"
        )
    not_cur = [f for f in features if f not in columns]
    if not_cur:
        raise DataError(
            f"the current data has no column(s) {not_cur}; its columns are {sorted(columns)}"
        )
    return features, []


def _check_kinds(expected: Mapping[str, str], current: Any, names: Sequence[str]) -> None:
    got = {n: _scan.column_kind(current.dtypes[n]) for n in names}
    bad = [f"{n!r} is {expected[n]} in the reference but {got[n] or current.dtypes[n]} now"
           for n in names if got[n] != expected[n]]
    if bad:
        raise DataError("column types changed: " + "; ".join(bad) + "; fix the current data")


def drift(
    reference: Any,
    current: Any,
    features: Sequence[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    *,
    bins: int = 10,
    resolution: int = 1000,
    client: Any = None,
    progress: bool | None = None,
) -> DriftReport:
    """Compare ``current`` data with ``reference`` data feature by feature.

    Numeric features are tested with the two-sample Kolmogorov-Smirnov test and scored with the
    PSI on reference-quantile bins; categorical features (strings, booleans, categoricals) with
    the chi-square test of homogeneity and the Jensen-Shannon distance. Dask DataFrames are
    scanned on the cluster, every feature in one pass; only counts reach this process.

    When both inputs are pandas DataFrames the KS test is ``scipy.stats.ks_2samp`` on the raw
    values (exact). Otherwise the KS statistic is evaluated at the ``resolution`` reference
    quantile edges, where both empirical CDFs are exact: the exact statistic lies between the
    reported ``statistic`` and ``statistic_upper`` (gap at most about 2/resolution), and the
    p-value is scipy's asymptotic one for that statistic.

    Parameters
    ----------
    reference : DataFrame, ReferenceProfile, path or MLflow URI
        Reference (training) data, or its precomputed :func:`reference_profile` (then only the
        current data is scanned): a profile object, a JSON file, a run id, ``runs:/...`` or
        ``models:/...`` (see :func:`load_profile`).
    current : pandas.DataFrame or dask.dataframe.DataFrame
        The data to check, e.g. :func:`mlkit.monitor.predictions`.
    features : list of str, optional
        Columns to compare. Default: every reference feature present in ``current``
        (those absent, such as the target, are listed in ``report.skipped``).
    thresholds : dict, optional
        Overrides of :data:`DEFAULT_THRESHOLDS`: ``pvalue`` (0.05, family-wise),
        ``correction`` ("bonferroni" or "none"), ``psi`` (0.2), ``js`` (0.1), ``min_rows``
        (1000: smaller samples are judged by the p-value alone). ``None`` turns a criterion off.
    bins, resolution : int
        PSI bins and KS grid size when the reference is a DataFrame (see
        :func:`reference_profile`).
    client : distributed.Client, optional
        Defaults to the mlkit cluster's client (dask input only).
    progress : bool, optional
        Show a progress bar (default: in a notebook, or when stderr is a terminal, once the
        work has run for 2 s).

    Returns
    -------
    DriftReport
        ``report.drifted`` is the overall verdict; ``report.to_pandas()`` the table.

    Examples
    --------
    >>> import mlkit
    >>> report = mlkit.monitor.drift(train_ddf, live_ddf)             # doctest: +SKIP
    >>> report.drifted, report.drifted_features                      # doctest: +SKIP
    (True, ['f3'])
    >>> report = mlkit.monitor.drift("reference.json", live_ddf)      # doctest: +SKIP
    """
    from mlkit.data._backend import as_pandas_backed
    from mlkit.monitor._report import DriftReport

    th = check_thresholds(thresholds)
    current = as_pandas_backed(current, "drift (current data)")
    if not isinstance(reference, str | os.PathLike | ReferenceProfile):
        reference = as_pandas_backed(reference, "drift (reference)")
    _check_frame(current, "the current data")
    if not _scan.is_dask(current) and len(current) == 0:
        raise DataError("the current data has no rows: nothing to compare")
    if isinstance(reference, str | os.PathLike):
        reference = load_profile(reference)

    raw_ref: Any = None
    if isinstance(reference, ReferenceProfile):
        profile = reference
        names, skipped = _resolve_features(profile.names, current, features)
        _check_kinds({n: profile.features[n].kind for n in names}, current, names)
        spec = {
            "numeric": {n: profile.features[n].edges  # type: ignore[union-attr]
                        if profile.features[n].n else None
                        for n in names if profile.features[n].kind == "numeric"},
            "categorical": {n: set(profile.features[n].categories)  # type: ignore[union-attr]
                            for n in names if profile.features[n].kind == "categorical"},
        }
        (cur,) = _scan.count([(current, spec)], client=client, progress=progress)
    else:
        _check_frame(reference, "the reference")
        if not _scan.is_dask(reference) and len(reference) == 0:
            raise DataError("the reference has no rows: nothing to compare against")
        bins = _check_int("bins", bins, 2)
        resolution = _check_int("resolution", resolution, 2)
        names, skipped = _resolve_features(default_features(reference), current, features)
        kinds = _scan.kinds_of(reference, names)
        _check_kinds(kinds, current, names)
        profile, (cur,) = build(
            reference, names, kinds, bins=bins, resolution=resolution, max_categories=100,
            sample=200_000, seed=0, others=[current], client=client, progress=progress,
        )
        if not _scan.is_dask(reference):
            raw_ref = reference
    rows_current = _rows_of(cur, names)
    if rows_current == 0:
        raise DataError("the current data has no rows: nothing to compare")
    exact = raw_ref is not None and not _scan.is_dask(current)

    results = []
    for name in names:
        prof = profile.features[name]
        if isinstance(prof, NumericProfile):
            raw = (raw_ref[name], current[name]) if exact else None
            results.append(_numeric(name, prof, cur[name], raw))
        else:
            results.append(_categorical(name, prof, cur[name]))
    alpha = _judge(results, th)
    return DriftReport(
        results,
        thresholds=th,
        alpha=alpha,
        rows_reference=profile.rows,
        rows_current=rows_current,
        skipped=skipped,
    )


def _rows_of(stats: Mapping[str, Any], names: Sequence[str]) -> int:
    s = stats[names[0]]
    return int(s["n"] + s["nulls"])


def _start(
    name: str, kind: str, test: str, prof: Any, cur: Mapping[str, Any]
) -> tuple[FeatureDrift, bool]:
    """A result with the counts filled in, and whether an empty side already decides it."""
    res = FeatureDrift(
        feature=name, kind=kind, test=test, statistic=math.nan, p_value=math.nan,
        drifted=False, reasons=[], n_reference=prof.n, n_current=int(cur["n"]),
        missing_reference=_missing_frac(prof.nulls, prof.n),
        missing_current=_missing_frac(int(cur["nulls"]), int(cur["n"])),
    )
    if prof.n == 0:
        res.reasons.append("no values in the reference: not tested")
        return res, True
    if cur["n"] == 0:
        res.drifted = True
        res.reasons.append("every value is missing in the current data")
        return res, True
    return res, False


def _numeric(
    name: str, prof: NumericProfile, cur: Mapping[str, Any], raw: tuple[Any, Any] | None
) -> FeatureDrift:
    res, decided = _start(name, "numeric", "ks", prof, cur)
    if decided:
        return res
    if raw is not None:
        a, _ = _scan._numeric_values(raw[0])
        b, _ = _scan._numeric_values(raw[1])
        ks = _stats.stats.ks_2samp(a, b)
        res.statistic, res.p_value = float(ks.statistic), float(ks.pvalue)
        res.statistic_upper = res.statistic
    else:
        d, p, upper = _stats.ks_from_counts(prof.counts, cur["counts"])
        res.statistic, res.p_value, res.statistic_upper, res.exact = d, p, upper, False
    res.psi = _stats.psi(
        _stats.regroup(prof.counts, prof.edges, prof.psi_edges),
        _stats.regroup(cur["counts"], prof.edges, prof.psi_edges),
    )
    res.plot = _overlay(prof, cur)
    return res


def _overlay(prof: NumericProfile, cur: Mapping[str, Any], bins: int = 24) -> dict[str, Any]:
    """Histogram overlay data: fine-grid bins merged into ~equal-width display bins.

    Counts exist only on the reference's quantile grid, so display edges are grid edges nearest
    to an even spacing of the reference's range. The open-ended outer bins are drawn at most two
    bin widths wide (with their full mass), so a long tail does not flatten the picture.
    """
    edges = prof.edges
    if len(edges) < 2:
        disp = edges
        width = 1.0
    else:
        targets = np.linspace(edges[0], edges[-1], bins + 1)
        idx = np.unique(np.clip(np.searchsorted(edges, targets), 0, len(edges) - 1))
        disp = edges[idx]
        width = float(np.median(np.diff(disp))) if len(disp) > 1 else 1.0
    lo_data = min(v for v in (prof.min, cur["min"]) if v is not None and np.isfinite(v))
    hi_data = max(v for v in (prof.max, cur["max"]) if v is not None and np.isfinite(v))
    lo = max(lo_data, disp[0] - 2 * width) if len(disp) else lo_data
    hi = min(hi_data, disp[-1] + 2 * width) if len(disp) else hi_data
    if len(disp):
        lo, hi = min(lo, disp[0]), max(hi, disp[-1])
    return {
        "edges": [float(lo), *disp.tolist(), float(hi)],
        "reference": _stats.regroup(prof.counts, edges, disp).tolist(),
        "current": _stats.regroup(cur["counts"], edges, disp).tolist(),
    }


def _categorical(
    name: str, prof: CategoricalProfile, cur: Mapping[str, Any]
) -> FeatureDrift:
    labels = list(prof.categories) + [_scan.OTHER]
    ref_counts = np.array([*prof.categories.values(), prof.other], dtype=np.int64)
    cur_counts = np.array([cur["counts"].get(k, 0) for k in labels], dtype=np.int64)
    res, decided = _start(name, "categorical", "chi2", prof, cur)
    if decided:
        return res
    res.statistic, res.p_value = _stats.chi2_from_counts(ref_counts, cur_counts)
    res.js_distance = _stats.js_distance(ref_counts, cur_counts)
    keep = (ref_counts + cur_counts) > 0
    res.plot = {
        "labels": [lab for lab, k in zip(labels, keep, strict=True) if k],
        "reference": ref_counts[keep].tolist(),
        "current": cur_counts[keep].tolist(),
    }
    return res


def _judge(results: list[FeatureDrift], th: Mapping[str, Any]) -> float | None:
    """Set ``drifted`` and ``reasons`` on every result; returns the per-feature p threshold."""
    tested = [r for r in results if not math.isnan(r.p_value)]
    alpha = th["pvalue"]
    if alpha is not None and th["correction"] == "bonferroni" and tested:
        alpha = alpha / len(tested)
    for r in results:
        if not math.isnan(r.p_value) and alpha is not None and r.p_value < alpha:
            r.drifted = True
            r.reasons.append(f"{r.test} p-value {r.p_value:.3g} < {alpha:.3g}")
        big = min(r.n_reference, r.n_current) >= th["min_rows"]
        if big and th["psi"] is not None and r.psi >= th["psi"]:
            r.drifted = True
            r.reasons.append(f"PSI {r.psi:.3g} >= {th['psi']:g}")
        if big and th["js"] is not None and r.js_distance >= th["js"]:
            r.drifted = True
            r.reasons.append(f"JS distance {r.js_distance:.3g} >= {th['js']:g}")
    return alpha
