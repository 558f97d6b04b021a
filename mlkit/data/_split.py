"""``split``: deterministic train/validation/test splits, stable by key when asked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlkit import _args
from mlkit._imports import require
from mlkit.data._prep.base import is_dask
from mlkit.exceptions import ConfigArgumentError, ConfigError, DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
else:
    np = require("numpy")
    pd = require("pandas")

__all__ = ["split"]


def _uniform(pdf: pd.DataFrame, key: list[str] | None, seed: int, partition: int) -> np.ndarray:
    """A number in [0, 1) per row: from the key's hash (pandas' stable siphash, seeded), or
    from a generator seeded with (seed, partition number)."""
    if key is None:
        return np.random.default_rng([seed, partition]).random(len(pdf))
    hash_key = f"mlkit-{seed:010d}"[-16:]
    h = pd.util.hash_pandas_object(pdf[key], index=False, hash_key=hash_key).to_numpy()
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _part(
    pdf: pd.DataFrame, key: list[str] | None, seed: int, bounds: np.ndarray, which: int,
    partition_info: dict | None = None,
) -> pd.DataFrame:
    """The rows of one partition that fall in part ``which`` (dask passes partition_info)."""
    partition = (partition_info or {}).get("number", 0)
    u = _uniform(pdf, key, seed, partition)
    return pdf[np.searchsorted(bounds, u, side="right") == which]


def split(
    df: Any,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    key: str | Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[Any, ...]:
    """Split rows into len(fractions) parts, deterministically.

    Parameters
    ----------
    df : pandas or dask DataFrame
    fractions : sequence of float
        Positive, summing to 1, e.g. ``(0.8, 0.2)`` or ``(0.8, 0.1, 0.1)``.
    key : str or list of str, optional
        Column(s) identifying an entity (customer id...). A row's part then depends only on the
        hash of its key and ``seed``: the same on every run, whatever the partitioning, and all
        rows of one key land in the same part. Without a key, rows are drawn with a generator
        seeded by ``seed`` and the partition number (deterministic for the same partitioning).
    seed : int
        Changes the assignment.

    Returns
    -------
    tuple
        One lazy DataFrame (same kind as ``df``) per fraction; the part sizes follow the
        fractions up to sampling noise.

    Examples
    --------
    >>> import mlkit
    >>> parts = mlkit.data.split(df, (0.8, 0.1, 0.1), key="customer_id")  # doctest: +SKIP
    >>> train, valid, test = parts                                        # doctest: +SKIP
    """
    try:
        fr = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise ConfigError(f"fractions must be numbers, but got {fractions!r}") from None
    if len(fr) < 2 or any(not f > 0 for f in fr):
        raise ConfigError(f"fractions must be two or more positive numbers, but got {fractions!r}")
    if not math.isclose(sum(fr), 1.0, rel_tol=0, abs_tol=1e-9):
        raise ConfigError(f"fractions must sum to 1, but {fractions!r} sums to {sum(fr):g}")
    _args.non_negative_int("seed", seed, error=ConfigArgumentError)
    if not (isinstance(df, pd.DataFrame) or is_dask(df)):
        raise DataError(f"split needs a pandas or dask DataFrame, got {type(df).__name__}")
    keys = None if key is None else ([key] if isinstance(key, str) else list(key))
    if keys is not None:
        lacking = [k for k in keys if k not in df.columns]
        if lacking:
            raise DataError(
                f"split key column(s) {lacking} not in the data (it has "
                f"{[str(c) for c in df.columns]})"
            )
    bounds = np.cumsum(fr)[:-1]
    if is_dask(df):
        return tuple(
            df.map_partitions(_part, keys, int(seed), bounds, i, meta=df._meta)
            for i in range(len(fr))
        )
    return tuple(_part(df, keys, int(seed), bounds, i) for i in range(len(fr)))
