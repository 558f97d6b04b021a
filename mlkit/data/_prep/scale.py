"""StandardScaler and MinMaxScaler: scikit-learn's formulas, fitted from per-partition moments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.data._prep.base import (
    Passes,
    Transformer,
    check_numeric_dtypes,
    frame,
    numeric_block,
)
from mlkit.exceptions import ConfigError, DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
else:
    np = require("numpy")
    pd = require("pandas")

__all__ = ["StandardScaler", "MinMaxScaler"]


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: count, mean and sum of squared deviations of the non-missing values."""
    valid = ~np.isnan(x)
    n = valid.sum(axis=0)
    with np.errstate(all="ignore"):
        mean = np.where(n > 0, np.nansum(x, axis=0) / np.maximum(n, 1), 0.0)
        m2 = np.nansum((x - mean) ** 2, axis=0)
    return n.astype(np.int64), mean, m2


def _combine(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple:
    """Chan, Golub & LeVeque's pairwise update: numerically stable where sum(x^2) - n*mean^2
    (what a plain dask ``var`` does) loses digits on data with a large mean."""
    n, mean, m2 = parts[0]
    n, mean, m2 = n.astype(np.float64), mean.copy(), m2.copy()
    for nb, mb, m2b in parts[1:]:
        total = n + nb
        with np.errstate(all="ignore"):
            delta = mb - mean
            frac = np.where(total > 0, nb / np.maximum(total, 1), 0.0)
            mean = mean + delta * frac
            m2 = m2 + m2b + delta**2 * n * frac
        n = total
    return n, mean, m2


def _check_finite(names: Any, lo: np.ndarray, hi: np.ndarray, who: str) -> None:
    for name, a, b in zip(names, lo, hi, strict=True):
        if np.isinf(a) or np.isinf(b):
            raise DataError(
                f"{who}: column {name!r} holds infinite values ({a} .. {b}); replace them first"
            )


def _minmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min and max ignoring NaN (NaN for an all-missing column).

    ``fmin``/``fmax`` skip NaN without the copy ``nanmin`` makes to mask them."""
    if len(x) == 0:
        return np.full(x.shape[1], np.nan), np.full(x.shape[1], np.nan)
    return np.fmin.reduce(x, axis=0), np.fmax.reduce(x, axis=0)


def _with_fill(fill: list | None, missing: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple:
    """Widen min/max by the imputer's fill value of each column that had missing values."""
    if fill is None:
        return lo, hi
    f = np.asarray(fill, dtype=np.float64)
    has = missing > 0
    return np.where(has, np.fmin(lo, f), lo), np.where(has, np.fmax(hi, f), hi)


class StandardScaler(Transformer):
    """Standardise numeric columns to zero mean and unit variance (``(x - mean_) / scale_``).

    Same parameters, attributes and results as ``sklearn.preprocessing.StandardScaler``
    (population variance; missing values ignored in fit and kept in transform; constant
    columns get ``scale_ = 1``). Fits in one pass on dask.

    Parameters
    ----------
    with_mean, with_std : bool
        Centre / scale.

    Examples
    --------
    >>> from mlkit.data import StandardScaler
    >>> sc = StandardScaler().fit(ddf[["f0", "f1"]])      # doctest: +SKIP
    >>> sc.mean_, sc.scale_                               # doctest: +SKIP
    """

    _fits_through_imputer = True

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        self.with_mean = with_mean
        self.with_std = with_std

    def _check(self, dtypes: pd.Series) -> None:
        check_numeric_dtypes(dtypes, "StandardScaler")

    def _passes(self) -> Passes:
        cols = list(self.feature_names_in_)

        def partial(pdf: pd.DataFrame) -> tuple:
            x = numeric_block(pdf, cols, "StandardScaler")
            return (*_moments(x), *_minmax(x), len(x))

        results = yield partial
        lo = np.fmin.reduce([r[3] for r in results])
        hi = np.fmax.reduce([r[4] for r in results])
        n, mean, m2 = _combine([r[:3] for r in results])
        fill = self._fill()
        if fill is not None:
            missing = sum(r[5] for r in results) - n
            lo, hi = _with_fill(fill, missing, lo, hi)
            f = np.asarray(fill, dtype=np.float64)
            n, mean, m2 = _combine([(n, mean, m2), (missing, f, np.zeros_like(f))])
        _check_finite(cols, lo, hi, "StandardScaler")
        var = np.where(n > 0, m2 / np.maximum(n, 1), np.nan)
        self.n_samples_seen_ = n.astype(np.int64)
        self.mean_ = mean if self.with_mean or self.with_std else None
        self.var_ = var if self.with_std else None
        if self.with_std:
            eps = np.finfo(np.float64).eps
            # sklearn's _is_constant_feature: the error bound of the two-pass variance
            constant = var <= n * eps * var + (n * mean * eps) ** 2
            scale = np.sqrt(var)
            scale[constant | (scale < 10 * eps)] = 1.0
            self.scale_: np.ndarray | None = scale
        else:
            self.scale_ = None

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        cols = list(self.feature_names_in_)
        x = numeric_block(pdf, cols, "StandardScaler")
        if self.with_mean:
            x -= self.mean_
        if self.with_std:
            x /= self.scale_
        return frame(x, cols, pdf.index)


class MinMaxScaler(Transformer):
    """Scale numeric columns to ``feature_range`` (``x * scale_ + min_``), as scikit-learn does.

    Parameters
    ----------
    feature_range : tuple (min, max)
        Target range.
    clip : bool
        Clip transformed values of new data to the range.

    Examples
    --------
    >>> from mlkit.data import MinMaxScaler
    >>> MinMaxScaler().fit(ddf[["f0"]]).data_max_         # doctest: +SKIP
    """

    _fits_through_imputer = True

    def __init__(self, feature_range: tuple[float, float] = (0, 1), clip: bool = False) -> None:
        self.feature_range = feature_range
        self.clip = clip

    def _check(self, dtypes: pd.Series) -> None:
        low, high = self.feature_range
        if not low < high:
            raise ConfigError(
                f"MinMaxScaler: feature_range must satisfy min < max, but got {self.feature_range}"
            )
        check_numeric_dtypes(dtypes, "MinMaxScaler")

    def _passes(self) -> Passes:
        cols = list(self.feature_names_in_)

        def partial(pdf: pd.DataFrame) -> tuple:
            x = numeric_block(pdf, cols, "MinMaxScaler")
            return (*_minmax(x), (~np.isnan(x)).sum(axis=0), len(x))

        results = yield partial
        lo = np.fmin.reduce([r[0] for r in results])
        hi = np.fmax.reduce([r[1] for r in results])
        seen = np.sum([r[2] for r in results], axis=0)
        fill = self._fill()
        if fill is not None:
            missing = sum(r[3] for r in results) - seen
            lo, hi = _with_fill(fill, missing, lo, hi)
            seen = seen + missing
        _check_finite(cols, lo, hi, "MinMaxScaler")
        self.n_samples_seen_ = seen
        data_range = hi - lo
        safe = data_range.copy()
        safe[safe < 10 * np.finfo(np.float64).eps] = 1.0  # sklearn's _handle_zeros_in_scale
        low, high = self.feature_range
        self.data_min_, self.data_max_, self.data_range_ = lo, hi, data_range
        self.scale_ = (high - low) / safe
        self.min_ = low - lo * self.scale_

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        cols = list(self.feature_names_in_)
        x = numeric_block(pdf, cols, "MinMaxScaler")
        x *= self.scale_
        x += self.min_
        if self.clip:
            np.clip(x, self.feature_range[0], self.feature_range[1], out=x)
        return frame(x, cols, pdf.index)
