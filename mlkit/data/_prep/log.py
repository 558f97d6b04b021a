"""LogTransformer: ``log(x + offset)`` (``log1p`` when the offset is 1) for skewed columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlkit._imports import require
from mlkit.data._prep.base import (
    Passes,
    Transformer,
    check_numeric_dtypes,
    frame,
    numeric_block,
)
from mlkit.data._prep.scale import _with_fill
from mlkit.exceptions import DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
else:
    np = require("numpy")
    pd = require("pandas")

__all__ = ["LogTransformer"]


class LogTransformer(Transformer):
    """Natural log of ``x + offset`` for numeric columns (as
    ``FunctionTransformer(np.log1p)`` with the default ``offset=1``).

    Fitting checks, in one pass, that every value is above ``-offset``; new data below it
    transforms to NaN (missing), never to an exception inside a served model.

    Parameters
    ----------
    offset : float
        Added before the log.

    Examples
    --------
    >>> from mlkit.data import LogTransformer
    >>> LogTransformer().fit_transform(ddf[["income"]])   # doctest: +SKIP
    """

    _fits_through_imputer = True

    def __init__(self, offset: float = 1.0) -> None:
        self.offset = offset

    def _check(self, dtypes: pd.Series) -> None:
        check_numeric_dtypes(dtypes, "LogTransformer")

    def _passes(self) -> Passes:
        cols = list(self.feature_names_in_)

        def partial(pdf: pd.DataFrame) -> tuple:
            x = numeric_block(pdf, cols, "LogTransformer")
            low = np.fmin.reduce(x, axis=0) if len(x) else np.full(len(cols), np.nan)
            return low, np.isnan(x).sum(axis=0)

        results = yield partial
        lo = np.fmin.reduce([r[0] for r in results])
        missing = np.sum([r[1] for r in results], axis=0)
        lo, _ = _with_fill(self._fill(), missing, lo, lo)
        for col, low in zip(cols, lo, strict=True):
            if low + self.offset <= 0:
                raise DataError(
                    f"LogTransformer: column {col!r} has values as low as {low}, and "
                    f"log(x + {self.offset}) needs x > {-self.offset}; raise offset= or "
                    "transform that column differently"
                )
        self.data_min_ = lo

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        cols = list(self.feature_names_in_)
        x = numeric_block(pdf, cols, "LogTransformer")
        with np.errstate(all="ignore"):
            y = np.log1p(x) if self.offset == 1 else np.log(x + self.offset)
        y[~np.isfinite(y)] = np.nan
        return frame(y, cols, pdf.index)
