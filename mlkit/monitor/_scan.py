"""Scanning DataFrames into small summaries: the only place that touches the data.

A pandas frame is summarised in-process; a dask frame partition by partition on the cluster,
with the per-partition summaries merged in a tree of tasks there, so the client only ever receives
counts. Two kinds of pass exist:

* a *sketch* pass over the reference: quantiles of each numeric column (the bin edges) and the
  category counts of each categorical column;
* a *count* pass: counts of every numeric column on those edges (exact), plus moments, and the
  counts of the reference's categories. Any number of frames (reference and current) are counted
  in one ``client.compute`` call, so each frame is read once per pass.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mlkit._imports import require
from mlkit.exceptions import DataError

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")

__all__ = [
    "is_dask",
    "column_kind",
    "kinds_of",
    "sketch",
    "count",
    "OTHER",
]

# Bucket for categories outside the reference's kept set (rare or unseen ones).
OTHER = "__other__"

_FANIN = 8  # partition summaries merged per task in the reduction tree


def is_dask(obj: Any) -> bool:
    """True for a dask DataFrame (checked without importing dask for pandas input)."""
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "npartitions")


def column_kind(dtype: Any) -> str | None:
    """``"numeric"``, ``"categorical"`` or None (datetimes and the like are not tested)."""
    import pandas as pd

    api = pd.api.types
    if api.is_bool_dtype(dtype):
        return "categorical"
    if api.is_numeric_dtype(dtype) and not api.is_complex_dtype(dtype):
        return "numeric"
    if api.is_datetime64_any_dtype(dtype) or api.is_timedelta64_dtype(dtype):
        return None
    if isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype):
        return None
    return "categorical"


def kinds_of(df: Any, features: Sequence[str]) -> dict[str, str]:
    """Kinds of the given columns; DataError for a column that cannot be tested."""
    dtypes = df.dtypes
    out: dict[str, str] = {}
    for name in features:
        kind = column_kind(dtypes[name])
        if kind is None:
            raise DataError(
                f"column {name!r} has dtype {dtypes[name]} which drift cannot test "
                "(numeric, boolean, string and categorical columns are supported); "
                "leave it out with features=[...]"
            )
        out[name] = kind
    return out


# -- per-partition work (runs on the workers) -------------------------------------------------
def _numeric_values(series: Any) -> tuple[np.ndarray, int]:
    """Finite values of a numeric column and how many were missing (NaN, None or +-inf)."""
    x = series.to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(x)
    return x[finite], int(len(x) - finite.sum())


def _category_counts(series: Any) -> tuple[dict[str, int], int]:
    nulls = int(series.isna().sum())
    vc = series.dropna().astype(str).value_counts()
    return {str(k): int(v) for k, v in vc.items() if v > 0}, nulls


def _sketch_partition(
    part: Any, numeric: list[str], categorical: list[str], q: np.ndarray, cap: int, seed: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name in numeric:
        v, nulls = _numeric_values(part[name])
        if len(v) > cap:  # edges only need to be near the quantiles; counts are exact later
            v = v[rng.integers(0, len(v), size=cap)]
        # Sorting first is several times faster than np.quantile's partitioning for ~1000
        # quantiles, and gives the same values (the same order statistics are interpolated).
        qv = np.quantile(np.sort(v), q) if len(v) else np.full(len(q), np.nan)
        out[name] = {"sketches": [(len(v), qv)], "rows": len(part)}
    for name in categorical:
        counts, nulls = _category_counts(part[name])
        out[name] = {"counts": counts, "nulls": nulls, "rows": len(part)}
    return out


def _merge_sketches(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for name, s in part.items():
            if name not in out:
                out[name] = {k: (list(v) if k == "sketches" else (dict(v) if k == "counts" else v))
                             for k, v in s.items()}
                continue
            acc = out[name]
            acc["rows"] += s["rows"]
            if "sketches" in s:
                acc["sketches"].extend(s["sketches"])
            else:
                acc["nulls"] += s["nulls"]
                for k, v in s["counts"].items():
                    acc["counts"][k] = acc["counts"].get(k, 0) + v
    return out


def _count_partition(part: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Exact counts of one partition on the spec's edges / categories, plus moments."""
    out: dict[str, Any] = {}
    for name, edges in spec["numeric"].items():
        v, nulls = _numeric_values(part[name])
        if edges is None:
            counts = np.array([len(v)], dtype=np.int64)
        else:
            # Bins are (e[i-1], e[i]]: how many values are <= each edge, differenced. Sorting
            # the partition and searching the few edges in it is much faster than searching
            # every value among the edges.
            v = np.sort(v)
            below = np.searchsorted(v, edges, side="right")
            counts = np.diff(below, prepend=0, append=len(v)).astype(np.int64)
        n = len(v)
        mean = float(v.mean()) if n else 0.0
        out[name] = {
            "n": n,
            "nulls": nulls,
            "mean": mean,
            "m2": float(((v - mean) ** 2).sum()) if n else 0.0,
            "min": float(v.min()) if n else np.inf,
            "max": float(v.max()) if n else -np.inf,
            "counts": counts,
        }
    for name, known in spec["categorical"].items():
        counts, nulls = _category_counts(part[name])
        mapped: dict[str, int] = {}
        for k, v in counts.items():
            key = k if k in known else OTHER
            mapped[key] = mapped.get(key, 0) + v
        out[name] = {"n": sum(counts.values()), "nulls": nulls, "counts": mapped}
    return out


def _merge_counts(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for name, s in part.items():
            acc = out.get(name)
            if acc is None:
                out[name] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in s.items()}
                continue
            if "m2" in s:
                # Chan et al.'s pairwise update keeps the variance accurate across partitions.
                n1, n2 = acc["n"], s["n"]
                n = n1 + n2
                if n2:
                    delta = s["mean"] - acc["mean"]
                    acc["mean"] = acc["mean"] + delta * n2 / n
                    acc["m2"] = acc["m2"] + s["m2"] + delta * delta * n1 * n2 / n
                acc["n"] = n
                acc["nulls"] += s["nulls"]
                acc["min"] = min(acc["min"], s["min"])
                acc["max"] = max(acc["max"], s["max"])
                acc["counts"] = acc["counts"] + s["counts"]
            else:
                acc["n"] += s["n"]
                acc["nulls"] += s["nulls"]
                for k, v in s["counts"].items():
                    acc["counts"][k] = acc["counts"].get(k, 0) + v
    return out


# -- orchestration ----------------------------------------------------------------------------
def _tree(parts: list[Any], merge: Callable[..., Any]) -> Any:
    import dask

    merge_d = dask.delayed(merge, pure=True)
    while len(parts) > 1:
        parts = [merge_d(*parts[i : i + _FANIN]) for i in range(0, len(parts), _FANIN)]
    return parts[0]


def _compute(objs: list[Any], client: Any, progress: bool | None) -> list[Any]:
    """Compute delayed objects on the cluster together, with a progress bar, interruptible."""
    from mlkit._display import done_quietly, end_view, wants_progress
    from mlkit._interrupt import interruptible

    view = None
    # Interrupted (or failed): the cluster is freed now, not when the futures are collected.
    with interruptible(client) as scope:
        futures = scope.track(client.compute(objs))
        try:
            if wants_progress(progress) and not done_quietly(futures, progress):
                from mlkit._display import DaskProgress, can_draw_widgets

                if can_draw_widgets():
                    view = DaskProgress(futures, "scanning the logs")  # ends as a static line
                else:  # the text bar writes to stdout; keep stdout for results
                    from distributed import progress as dask_progress

                    with contextlib.redirect_stdout(sys.stderr):
                        dask_progress(futures, notebook=False)
            results = client.gather(futures)
        except BaseException as exc:
            end_view(view, exc)
            raise
        end_view(view)
        return results


def _get_client(client: Any) -> Any:
    if client is not None:
        return client
    from mlkit.cluster import get_client

    return get_client()


def _quantile_grid(resolution: int, bins: int) -> np.ndarray:
    grids = [np.array([0.0, 1.0])]
    grids += [np.arange(1, k) / k for k in (resolution, bins)]
    return np.unique(np.concatenate(grids))


def sketch(
    df: Any,
    numeric: list[str],
    categorical: list[str],
    q: np.ndarray,
    *,
    cap: int,
    seed: int = 0,
    client: Any = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Reference quantiles at ``q`` (numeric) and category counts (categorical), one pass.

    Returns ``{name: {"quantiles": array or None, "rows": int}}`` for numeric columns and
    ``{name: {"counts": dict, "nulls": int, "rows": int}}`` for categorical ones.
    """
    if is_dask(df):
        import dask

        cols = list(dict.fromkeys(numeric + categorical))
        parts = df[cols].to_delayed()
        task = dask.delayed(_sketch_partition, pure=True)
        q_d = dask.delayed(q)
        tasks = [task(p, numeric, categorical, q_d, cap, seed + i) for i, p in enumerate(parts)]
        (merged,) = _compute([_tree(tasks, _merge_sketches)], _get_client(client), progress)
    else:
        # In memory: exact quantiles of every value (no sub-sampling).
        merged = _sketch_partition(df, numeric, categorical, q, cap=sys.maxsize, seed=seed)
    for name in numeric:
        entry = merged[name]
        entry["quantiles"] = _merge_q(q, entry.pop("sketches"))
    return merged


def _merge_q(q: np.ndarray, sketches: list[tuple[int, np.ndarray]]) -> np.ndarray | None:
    from mlkit.monitor._stats import merge_quantiles

    return merge_quantiles(q, sketches)


def count(
    jobs: Sequence[tuple[Any, dict[str, Any]]],
    *,
    client: Any = None,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Counts of each ``(frame, spec)`` job; all dask frames are computed together (one pass).

    ``spec`` is ``{"numeric": {name: edges or None}, "categorical": {name: set of categories}}``.
    """
    results: list[Any] = [None] * len(jobs)
    lazy: list[tuple[int, Any]] = []
    for i, (df, spec) in enumerate(jobs):
        if not spec["numeric"] and not spec["categorical"]:
            results[i] = {}  # nothing to count: no pass over this frame
        elif is_dask(df):
            import dask

            cols = list(spec["numeric"]) + list(spec["categorical"])
            spec_d = dask.delayed(spec)  # one key shared by all tasks, not a copy in each
            task = dask.delayed(_count_partition, pure=True)
            parts = [task(p, spec_d) for p in df[cols].to_delayed()]
            lazy.append((i, _tree(parts, _merge_counts)))
        else:
            results[i] = _count_partition(df, spec)
    if lazy:
        done = _compute([obj for _, obj in lazy], _get_client(client), progress)
        for (i, _), value in zip(lazy, done, strict=True):
            results[i] = value
    return results
