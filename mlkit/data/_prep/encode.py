"""OneHotEncoder and OrdinalEncoder: categories learnt in one pass, unseen ones handled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.data._prep.base import Passes, Transformer, frame
from mlkit.exceptions import ConfigError, DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
else:
    np = require("numpy")
    pd = require("pandas")

__all__ = ["OneHotEncoder", "OrdinalEncoder"]


def _seen(pdf: pd.DataFrame, cols: list[str]) -> dict[str, tuple[np.ndarray, bool]]:
    out = {}
    for c in cols:
        s = pdf[c]
        out[c] = (s.dropna().unique(), bool(s.isna().any()))
    return out


def _categories(who: str, col: str, parts: list[tuple[Any, bool]]) -> tuple[np.ndarray, bool]:
    values = pd.unique(np.concatenate([np.asarray(p[0], dtype=object) for p in parts]))
    try:
        # sklearn orders categories by value (np.unique); missing, if seen, comes last
        cats = np.array(sorted(values.tolist()), dtype=object)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in values})
        examples = [v for v in values[:6].tolist()]
        raise DataError(
            f"{who}: column {col!r} has mixed types ({', '.join(kinds)}; e.g. {examples}); "
            "convert it to one type (e.g. .astype(str)) first"
        ) from None
    if len(cats) and all(isinstance(v, (int, float, np.number)) for v in cats):
        cats = cats.astype(np.float64 if any(isinstance(v, float) for v in cats) else np.int64)
    return cats, any(p[1] for p in parts)


class _Encoder(Transformer):
    _fits_through_imputer = True

    def _passes(self) -> Passes:
        cols = list(self.feature_names_in_)
        results = yield (lambda pdf: _seen(pdf, cols))
        fill = self._fill()
        cats, missing = [], []
        for j, c in enumerate(cols):
            parts = [r[c] for r in results]
            if fill is not None and any(p[1] for p in parts):
                # the imputer turns every missing value into its fill value
                parts = [(p[0], False) for p in parts] + [(np.array([fill[j]]), False)]
            cat, miss = _categories(type(self).__name__, c, parts)
            cats.append(cat)
            missing.append(miss)
        self.categories_ = cats
        self.missing_seen_ = np.asarray(missing, dtype=bool)

    def _codes(self, pdf: pd.DataFrame, j: int, col: str) -> tuple[np.ndarray, np.ndarray]:
        """Category index per row (-1: unseen or missing) and the missing mask."""
        values = pdf[col]
        codes = pd.Index(self.categories_[j]).get_indexer(values)
        return codes, values.isna().to_numpy()

    def _unseen(self, pdf: pd.DataFrame, col: str, bad: np.ndarray) -> DataError:
        examples = list(dict.fromkeys(pdf[col][bad].astype(str).tolist()))[:5]
        return DataError(
            f"{type(self).__name__}: column {col!r} has categories not seen during fit: "
            f"{examples}; refit on data that includes them or use handle_unknown="
            f"{'ignore' if isinstance(self, OneHotEncoder) else 'use_encoded_value'!r}"
        )


class OneHotEncoder(_Encoder):
    """One float64 0/1 column per category (``<column>_<category>``), as scikit-learn's
    ``OneHotEncoder(sparse_output=False)``.

    Parameters
    ----------
    handle_unknown : {"ignore", "error"}
        A category unseen during fit: all zeros (``"ignore"``, the default here, so a served
        model never fails on a new value) or a :class:`~mlkit.exceptions.DataError`.

    Missing values seen during fit get their own column ``<column>_nan`` (last); missing values
    in new data without such a column encode as all zeros.

    Examples
    --------
    >>> from mlkit.data import OneHotEncoder
    >>> enc = OneHotEncoder().fit(ddf[["c0"]])                # doctest: +SKIP
    >>> enc.get_feature_names_out()                            # doctest: +SKIP
    array(['c0_a', 'c0_b', 'c0_c'], dtype=object)
    """

    def __init__(self, handle_unknown: str = "ignore") -> None:
        self.handle_unknown = handle_unknown

    def _check(self, dtypes: pd.Series) -> None:
        if self.handle_unknown not in ("ignore", "error"):
            raise ConfigError(
                "OneHotEncoder: handle_unknown must be 'ignore' or 'error', "
                f"but got {self.handle_unknown!r}"
            )

    def _names_out(self) -> list[str]:
        names = []
        triples = zip(self.feature_names_in_, self.categories_, self.missing_seen_, strict=True)
        for col, cats, miss in triples:
            names += [f"{col}_{c}" for c in cats.tolist()]
            if miss:
                names.append(f"{col}_nan")
        return names

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        n = len(pdf)
        blocks = []
        for j, col in enumerate(self.feature_names_in_):
            codes, isna = self._codes(pdf, j, col)
            k = len(self.categories_[j])
            width = k + int(self.missing_seen_[j])
            unseen = (codes < 0) & ~isna
            if self.handle_unknown == "error" and unseen.any():
                raise self._unseen(pdf, col, unseen)
            block = np.zeros((n, width), dtype=np.float64)
            hit = codes >= 0
            block[np.flatnonzero(hit), codes[hit]] = 1.0
            if self.missing_seen_[j]:
                block[isna, k] = 1.0
            blocks.append(block)
        data = np.hstack(blocks) if blocks else np.zeros((n, 0))
        return frame(data, self._names_out(), pdf.index)


class OrdinalEncoder(_Encoder):
    """Each category -> its index in the sorted categories (float64), as scikit-learn's
    ``OrdinalEncoder``.

    Parameters
    ----------
    handle_unknown : {"use_encoded_value", "error"}
        Unseen categories become ``unknown_value`` (default) or raise a DataError.
    unknown_value : float
        Code for unseen categories (default -1).
    encoded_missing_value : float
        Code for missing values (default NaN, left for an imputer or the model).

    Examples
    --------
    >>> from mlkit.data import OrdinalEncoder
    >>> OrdinalEncoder().fit_transform(ddf[["c0"]])             # doctest: +SKIP
    """

    def __init__(
        self,
        handle_unknown: str = "use_encoded_value",
        unknown_value: float = -1,
        encoded_missing_value: float = np.nan,
    ) -> None:
        self.handle_unknown = handle_unknown
        self.unknown_value = unknown_value
        self.encoded_missing_value = encoded_missing_value

    def _check(self, dtypes: pd.Series) -> None:
        if self.handle_unknown not in ("use_encoded_value", "error"):
            raise ConfigError(
                "OrdinalEncoder: handle_unknown must be 'use_encoded_value' or 'error', "
                f"but got {self.handle_unknown!r}"
            )

    def _transform_frame(self, pdf: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for j, col in enumerate(self.feature_names_in_):
            codes, isna = self._codes(pdf, j, col)
            unseen = (codes < 0) & ~isna
            if self.handle_unknown == "error" and unseen.any():
                raise self._unseen(pdf, col, unseen)
            x = codes.astype(np.float64)
            x[unseen] = self.unknown_value
            x[isna] = self.encoded_missing_value
            out[col] = x
        return pd.DataFrame(out, index=pdf.index, columns=list(self.feature_names_in_))
