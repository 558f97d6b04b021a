"""Apply a fitted sklearn-compatible transformer to pandas and dask DataFrames the same way.

Training applies it partition by partition (``map_partitions``) and the logged pyfunc applies it
to the raw request frame with the very same function, so serving sees exactly the features the
booster was trained on.
"""

from __future__ import annotations

from typing import Any

from mlkit._imports import require
from mlkit.exceptions import ConfigError

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")
pd = require("pandas")

__all__ = [
    "check_transformer",
    "is_fitted",
    "transform_frame",
    "transform_partition",
    "fit_transform_dask",
]


def check_transformer(preprocess: Any) -> None:
    """Raise ConfigError unless ``preprocess`` looks like an sklearn transformer."""
    missing = [m for m in ("fit", "transform") if not callable(getattr(preprocess, m, None))]
    if missing:
        raise ConfigError(
            f"preprocess={preprocess!r} is not a transformer (no {', '.join(missing)}): pass an "
            "sklearn-compatible transformer, e.g. one of mlkit.data's or a sklearn Pipeline"
        )


def is_fitted(preprocess: Any) -> bool:
    """sklearn's own check (any attribute ending in ``_``, or ``__sklearn_is_fitted__``)."""
    from mlkit._imports import require

    NotFittedError = require("sklearn.exceptions").NotFittedError
    check_is_fitted = require("sklearn.utils.validation").check_is_fitted

    try:
        check_is_fitted(preprocess)
    except NotFittedError:
        return False
    except TypeError:  # not an sklearn estimator: trust its own fit state
        return bool(getattr(preprocess, "__sklearn_is_fitted__", lambda: True)())
    return True


def transform_frame(preprocess: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``preprocess.transform(frame)`` as a DataFrame with the transformer's output names.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> df = pd.DataFrame({"a": [1.0, 3.0]})
    >>> transform_frame(StandardScaler().fit(df), df)["a"].tolist()
    [-1.0, 1.0]
    """
    out = preprocess.transform(frame)
    if isinstance(out, pd.DataFrame):
        return out
    if hasattr(out, "toarray"):  # scipy sparse (one-hot encoders)
        out = out.toarray()
    out = np.asarray(out)
    if out.ndim == 1:
        out = out.reshape(-1, 1)
    try:
        names = [str(n) for n in preprocess.get_feature_names_out()]
    except Exception:  # transformers without output names
        names = [f"x{i}" for i in range(out.shape[1])]
    return pd.DataFrame(out, index=frame.index, columns=names)


def transform_partition(frame: pd.DataFrame, preprocess: Any) -> pd.DataFrame:
    """:func:`transform_frame` with the partition first, as ``map_partitions`` calls it."""
    return transform_frame(preprocess, frame)


def fit_transform_dask(preprocess: Any, X: Any, sample: pd.DataFrame) -> Any:
    """Fit ``preprocess`` on ``X`` if it is not fitted, then transform ``X`` lazily.

    ``sample`` (a few raw rows) gives Dask the output's column names and dtypes.
    """
    check_transformer(preprocess)
    if not is_fitted(preprocess):
        if type(preprocess).__module__.startswith("sklearn."):
            # scikit-learn's own transformers fit in memory anyway (they call np.asarray on
            # the input); give them the pandas frame so they keep the column names.
            preprocess.fit(X.compute())
        else:
            # mlkit.data's transformers (and other dask-aware ones) fit on the cluster.
            preprocess.fit(X)
    meta = transform_frame(preprocess, sample).iloc[:0]
    return X.map_partitions(transform_partition, preprocess, meta=meta)
