"""The fitting protocol every mlkit transformer shares, and the driver that runs it.

A transformer fits in *passes*. Each pass is one function ``partial(pandas_frame) -> small``
applied to every partition (on the cluster, in ONE ``compute``), whose small results the
transformer combines on the client. Fitting on pandas runs the very same function on the whole
frame as a single partition, so a pandas fit and a dask fit share every line of statistics code.
Composers run their children's passes in lockstep, so a column-wise composer of single-pass
transformers reads the data once.

Transforming is a pure pandas function of the fitted statistics, applied with
``map_partitions`` on dask: the fitted object is small, pickles, and transforms a pandas frame in
a served model exactly as it transformed the training data.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Self

from mlkit._imports import require
from mlkit.exceptions import DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.utils.validation import check_is_fitted
else:
    np = require("numpy")
    pd = require("pandas")
    BaseEstimator = require("sklearn.base").BaseEstimator
    TransformerMixin = require("sklearn.base").TransformerMixin
    check_is_fitted = require("sklearn.utils.validation").check_is_fitted

__all__ = [
    "Transformer", "Partial", "Passes", "run_passes", "is_dask", "numeric_block", "frame",
]

Partial = Callable[[pd.DataFrame], Any]
# A fit: yields a per-partition function, receives the list of its per-partition results.
Passes = Generator[Partial, list, None]


def is_dask(x: Any) -> bool:
    import sys

    dd = sys.modules.get("dask.dataframe")
    return dd is not None and isinstance(x, dd.DataFrame)


def _frame(x: Any, who: str) -> Any:
    from mlkit.data._backend import as_pandas_backed

    x = as_pandas_backed(x, who)
    if isinstance(x, pd.DataFrame) or is_dask(x):
        return x
    raise DataError(
        f"{who} needs a pandas or dask DataFrame (named columns), but got {type(x).__name__}"
    )


def run_passes(gen: Passes, x: Any, client: Any = None, progress: bool | None = None) -> int:
    """Drive a fit generator over ``x`` (pandas or dask); returns the number of passes made.

    The first pass also counts rows, so an empty dataset fails with one clear error.
    """
    try:
        func = next(gen)
    except StopIteration:
        return 0
    passes = 0
    while True:
        if passes == 0:
            results = _evaluate(_with_length(func), x, client, progress)
            if sum(n for n, _ in results) == 0:
                gen.close()
                raise DataError("cannot fit on an empty dataset (0 rows)")
            results = [r for _, r in results]
        else:
            results = _evaluate(func, x, client, progress)
        passes += 1
        try:
            func = gen.send(results)
        except StopIteration:
            return passes


def _with_length(func: Partial) -> Partial:
    def counted(pdf: pd.DataFrame) -> tuple[int, Any]:
        return len(pdf), func(pdf)

    return counted


def _evaluate(func: Partial, x: Any, client: Any, progress: bool | None) -> list[Any]:
    from mlkit.data._progress import per_partition

    return per_partition(func, x, client, progress)


def numeric_block(pdf: pd.DataFrame, columns: Sequence[str], who: str) -> np.ndarray:
    """The columns as one float64 array (missing -> NaN); a DataError names a non-numeric one."""
    try:
        # a fresh writable array: pandas (copy-on-write) may hand out read-only views
        return pdf[list(columns)].to_numpy(dtype="float64", na_value=np.nan, copy=True)
    except (ValueError, TypeError):
        for col in columns:
            values = pdf[col]
            bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
            if len(bad):
                examples = list(dict.fromkeys(bad.astype(str).tolist()))[:3]
                raise DataError(
                    f"{who}: column {col!r} must be numeric but holds {examples}; encode it "
                    "(OneHotEncoder / OrdinalEncoder) or fix the data"
                ) from None
        raise


def frame(x: np.ndarray, columns: Sequence[str], index: pd.Index) -> pd.DataFrame:
    """Wrap a freshly computed array without copying it (pandas copies arrays by default)."""
    return pd.DataFrame(x, columns=list(columns), index=index, copy=False)


def check_numeric_dtypes(dtypes: pd.Series, who: str) -> None:
    """Fail early (from the schema only, nothing computed) on a column that is not numeric."""
    from pandas.api import types as pt

    for col, dtype in dtypes.items():
        if not (pt.is_numeric_dtype(dtype) or pt.is_bool_dtype(dtype)):
            if pt.is_object_dtype(dtype):
                kind = "mixed or text values"
            else:
                kind = "text" if pt.is_string_dtype(dtype) else str(dtype)
            raise DataError(
                f"{who}: column {col!r} is not numeric (dtype {dtype}: {kind}); encode it with "
                "OneHotEncoder / OrdinalEncoder or choose numeric columns"
            )


# auto_wrap_output_keys goes to sklearn's _SetOutputMixin, which its (missing) types do not show
class Transformer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Base class: sklearn's fit / transform / fit_transform / get_feature_names_out, on pandas
    or dask. Subclasses implement ``_check(dtypes)``, ``_passes()``, ``_transform_frame(pdf)``
    and ``_names_out()``.

    Fitted attributes common to all: ``feature_names_in_``, ``n_features_in_``, ``fit_passes_``
    (how many passes over the data the fit made).
    """

    # True for transformers that can fit on data *before* a one-pass SimpleImputer, in the same
    # pass as the imputer: they keep the missing values apart and fold the fill values in once
    # the imputer knows them (see Pipeline). Exact: a fill value is just n more equal values.
    _fits_through_imputer = False

    def _fill(self) -> list[Any] | None:
        """Fill values of the imputer this step is fitted through, or None."""
        source = getattr(self, "_fill_from", None)
        return None if source is None else list(source.statistics_)

    def _check(self, dtypes: pd.Series) -> None:
        """Validate the input columns' dtypes before any work (raise DataError)."""

    def _passes(self) -> Passes:
        """Yield per-partition functions and set fitted attributes from their results."""
        return
        yield  # pragma: no cover  (makes this a generator)

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def _names_out(self) -> list[str]:
        return list(self.feature_names_in_)

    def _required(self) -> list[str]:
        """Columns ``transform`` needs (a composer needs only those its branches use)."""
        return list(self.feature_names_in_)

    # -- sklearn API ---------------------------------------------------------------------------
    def _start_fit(self, x: Any) -> None:
        x = _frame(x, type(self).__name__)
        names = [str(c) for c in x.columns]
        if len(set(names)) != len(names):
            raise DataError(f"{type(self).__name__}: duplicate column names in {names}")
        if not names:
            raise DataError(f"{type(self).__name__}: the DataFrame has no columns")
        self._check(x.dtypes)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)

    def fit(
        self, X: Any, y: Any = None, *, client: Any = None, progress: bool | None = None
    ) -> Self:
        """Fit on a pandas or dask DataFrame (dask: per-partition statistics on the cluster).

        Examples
        --------
        >>> from mlkit.data import StandardScaler
        >>> StandardScaler().fit(df[["f0", "f1"]]).mean_      # doctest: +SKIP
        """
        X = _frame(X, type(self).__name__)
        self._start_fit(X)
        self.fit_passes_ = run_passes(self._passes(), X, client, progress)
        return self

    def transform(self, X: Any) -> Any:
        """Transform a pandas DataFrame (-> pandas) or a dask DataFrame (-> dask, lazily).

        Examples
        --------
        >>> out = fitted.transform(df)       # doctest: +SKIP
        """
        check_is_fitted(self, "feature_names_in_")
        X = _frame(X, type(self).__name__)
        missing = [c for c in self._required() if c not in X.columns]
        if missing:
            raise DataError(
                f"{type(self).__name__}: the input lacks column(s) {missing} seen during fit"
            )
        if is_dask(X):
            meta = self._transform_frame(X._meta)
            return X.map_partitions(self._transform_frame, meta=meta)
        return self._transform_frame(X)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """``fit(X).transform(X)`` (lazy on dask: only the fit computes).

        Examples
        --------
        >>> out = StandardScaler().fit_transform(df[["f0"]])   # doctest: +SKIP
        """
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names, as sklearn names them.

        Examples
        --------
        >>> OneHotEncoder().fit(df[["c0"]]).get_feature_names_out()   # doctest: +SKIP
        array(['c0_a', 'c0_b'], dtype=object)
        """
        check_is_fitted(self, "feature_names_in_")
        return np.asarray(self._names_out(), dtype=object)

    def __sklearn_tags__(self) -> Any:  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
