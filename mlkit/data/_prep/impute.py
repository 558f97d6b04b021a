"""SimpleImputer: fill missing values with the mean, exact median, most frequent value or a
constant, fitted on dask from per-partition statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkit import _args
from mlkit._imports import require
from mlkit.data._prep.base import (
    Passes,
    Transformer,
    check_numeric_dtypes,
    frame,
    numeric_block,
)
from mlkit.data._prep.median import exact_medians
from mlkit.exceptions import ConfigArgumentError, DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
    import pandas.api.types as pt
else:
    np = require("numpy")
    pd = require("pandas")
    pt = require("pandas.api.types")

__all__ = ["SimpleImputer"]

_STRATEGIES = ("mean", "median", "most_frequent", "constant")


def _value_counts(pdf: pd.DataFrame, cols: list[str]) -> dict[str, pd.Series]:
    return {c: pdf[c].value_counts(dropna=True, sort=False) for c in cols}


def _most_frequent(parts: list[pd.Series]) -> Any:
    counts = pd.concat(parts).groupby(level=0, sort=False).sum() if parts else pd.Series()
    if counts.empty:
        return None
    best = counts[counts == counts.max()].index
    # sklearn breaks ties by the smallest value
    return min(best.tolist())


class SimpleImputer(Transformer):
    """Replace missing values (NaN / None / NA) column by column.

    Parameters
    ----------
    strategy : {"mean", "median", "most_frequent", "constant"}
        ``mean``/``median`` need numeric columns; ``most_frequent``/``constant`` work on any.
        The median is exact (see :mod:`mlkit.data._prep.median`), at the cost of two or three
        passes over the data instead of one.
    fill_value : scalar, optional
        For ``constant``: default 0 for numeric columns and ``"missing_value"`` otherwise, as in
        scikit-learn.

    Attributes
    ----------
    statistics_ : numpy.ndarray
        The fill value of each column (as ``sklearn.impute.SimpleImputer.statistics_``).

    Examples
    --------
    >>> from mlkit.data import SimpleImputer
    >>> imp = SimpleImputer(strategy="median").fit(ddf[["f0", "f1"]])   # doctest: +SKIP
    >>> imp.statistics_                                               # doctest: +SKIP
    """

    def __init__(self, strategy: str = "mean", fill_value: Any = None) -> None:
        self.strategy = strategy
        self.fill_value = fill_value

    def _check(self, dtypes: pd.Series) -> None:
        _args.one_of("strategy", self.strategy, _STRATEGIES, error=ConfigArgumentError,
                     what_to_do="pick one of SimpleImputer's strategies")
        if self.strategy in ("mean", "median"):
            check_numeric_dtypes(dtypes, f"SimpleImputer(strategy={self.strategy!r})")
        self.numeric_ = np.asarray(
            [bool(pt.is_numeric_dtype(t) or pt.is_bool_dtype(t)) for t in dtypes.tolist()]
        )

    def _passes(self) -> Passes:
        cols = list(self.feature_names_in_)
        who = f"SimpleImputer(strategy={self.strategy!r})"
        if self.strategy == "constant":
            stats = [
                (0 if num else "missing_value") if self.fill_value is None else self.fill_value
                for num in self.numeric_
            ]
        elif self.strategy == "mean":

            def partial(pdf: pd.DataFrame) -> tuple:
                x = numeric_block(pdf, cols, who)
                return np.nansum(x, axis=0), (~np.isnan(x)).sum(axis=0)

            results = yield partial
            total = np.sum([r[0] for r in results], axis=0)
            count = np.sum([r[1] for r in results], axis=0)
            if np.isinf(total).any():
                bad = cols[int(np.flatnonzero(np.isinf(total))[0])]
                raise DataError(f"{who}: column {bad!r} holds infinite values; replace them first")
            with np.errstate(all="ignore"):
                stats = list(np.where(count > 0, total / np.maximum(count, 1), np.nan))
            self._empty(cols, count)
        elif self.strategy == "median":
            medians, count, _ = yield from exact_medians(cols, who)
            self._empty(cols, count)
            stats = list(medians)
        else:
            results = yield (lambda pdf: _value_counts(pdf, cols))
            stats = [_most_frequent([r[c] for r in results]) for c in cols]
            self._empty(cols, np.array([s is not None for s in stats]))
        self.statistics_ = np.asarray(stats, dtype=object if not all(self.numeric_) else float)

    def _meta_out(self, meta: pd.DataFrame) -> pd.DataFrame:
        """The (empty) output frame, before fitting: numeric columns become float64."""
        return meta.astype({c: "float64" for c, num in zip(meta.columns, self.numeric_,
                                                          strict=True) if num})

    def _empty(self, cols: list[str], count: np.ndarray) -> None:
        empty = [c for c, n in zip(cols, count, strict=True) if not n]
        if empty:
            raise DataError(
                f"SimpleImputer(strategy={self.strategy!r}): column(s) {empty} have no values "
                "at all, so there is nothing to learn a fill value from; drop them or use "
                "strategy='constant'"
            )

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        cols = list(self.feature_names_in_)
        num = [c for c, n in zip(cols, self.numeric_, strict=True) if n]
        if num:
            # all numeric columns as one block: one array, no per-column frames to stack
            x = numeric_block(pdf, num, "SimpleImputer")
            fill = np.asarray(
                [v for v, n in zip(self.statistics_, self.numeric_, strict=True) if n],
                dtype=np.float64,
            )
            rows, where = np.nonzero(np.isnan(x))
            x[rows, where] = fill[where]
            if len(num) == len(cols):
                return frame(x, cols, pdf.index)
            block = dict(zip(num, x.T, strict=True))
        else:
            block = {}
        out = {}
        for col, n, value in zip(cols, self.numeric_, self.statistics_, strict=True):
            out[col] = block[col] if n else pdf[col].fillna(value)
        return pd.DataFrame(out, index=pdf.index)
