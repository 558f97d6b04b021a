"""cuDF-backed frames meet pandas-only code: convert them once, and say so.

``mlkit.data.read(..., backend="cudf")`` puts partitions in GPU memory. mlkit's preprocessing and
drift statistics are written against pandas (numpy reductions, scipy tests), so a cuDF-backed
frame is moved to host memory partition by partition with a warning that names the step, rather
than failing deep inside a task with a cuDF ``TypeError``.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["is_cudf_backed", "as_pandas_backed"]


def is_cudf_backed(df: Any) -> bool:
    """True for a cudf.DataFrame / Series or a dask collection whose partitions are cuDF.

    Examples
    --------
    >>> import pandas as pd
    >>> is_cudf_backed(pd.DataFrame({"a": [1]}))
    False
    """
    meta = getattr(df, "_meta", df)
    return type(meta).__module__.split(".")[0] == "cudf"


def as_pandas_backed(df: Any, step: str) -> Any:
    """``df`` unchanged, or converted to pandas partitions (with a warning) if it is cuDF-backed.

    Examples
    --------
    >>> import pandas as pd
    >>> as_pandas_backed(pd.DataFrame({"a": [1]}), "drift").shape
    (1, 1)
    """
    if not is_cudf_backed(df):
        return df
    warnings.warn(
        f"{step}: the data is cuDF-backed (GPU memory); mlkit computes this step with pandas, so "
        "its partitions are copied to host memory. Read with backend='pandas' to avoid the copy.",
        UserWarning,
        stacklevel=3,
    )
    if hasattr(df, "to_backend"):  # dask collection
        return df.to_backend("pandas")
    return df.to_pandas()
