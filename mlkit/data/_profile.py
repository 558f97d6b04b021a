"""``profile``: a one-pass summary table of a dataset, computed on the cluster.

Per column: dtype, missing values, min / max / mean / std for numbers, distinct values and the
most frequent ones for text, booleans and categories. Shown as an HTML table in Jupyter (the
``%mlscale data profile`` magic), as text elsewhere.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlkit import _args
from mlkit._imports import require
from mlkit.data._prep.base import is_dask
from mlkit.data._prep.scale import _combine, _moments
from mlkit.data._progress import per_partition
from mlkit.exceptions import DataArgumentError, DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
    import pandas.api.types as pt
else:
    np = require("numpy")
    pd = require("pandas")
    pt = require("pandas.api.types")

__all__ = ["Profile", "profile"]

# Per partition, at most this many distinct values of a column travel back for the top list;
# beyond it the counts are those of each partition's most frequent values (marked approximate).
_DISTINCT_CAP = 10_000


@dataclass
class Profile:
    """Summary of a dataset. ``table`` has one row per column.

    Attributes
    ----------
    rows : int
    table : pandas.DataFrame
        Columns ``dtype, missing, missing_%, min, max, mean, std, distinct, top``.
    name : str
        What was profiled (a path or a variable name).
    """

    rows: int
    table: pd.DataFrame
    name: str = ""

    def __repr__(self) -> str:
        title = f"{self.name}: " if self.name else ""
        with pd.option_context("display.width", 200, "display.max_columns", 20,
                               "display.float_format", "{:.6g}".format):
            text = self.table.to_string(na_rep="")
        return f"{title}{self.rows} rows x {len(self.table)} columns\n{text}"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        title = html.escape(f"{self.name}: " if self.name else "")
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ["column", *self.table.columns])
        body = []
        for col, row in self.table.iterrows():
            cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row.tolist())
            body.append(f"<tr><th>{html.escape(str(col))}</th>{cells}</tr>")
        return (f"<div><b>{title}{self.rows} rows &times; {len(self.table)} columns</b>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
                "</div>")

    def widget(self) -> Any:
        """An ipywidgets HTML view of the table.

        Examples
        --------
        >>> display(mlkit.data.profile(df).widget())     # doctest: +SKIP
        """
        from mlkit._imports import require

        return require("ipywidgets").HTML(self._repr_html_())


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _partial(kinds: list[str], names: list[str]) -> Any:
    def stats(pdf: pd.DataFrame) -> tuple[int, list[tuple[Any, ...]]]:
        out: list[tuple[Any, ...]] = []
        for name, kind in zip(names, kinds, strict=True):
            s = pdf[name]
            missing = int(s.isna().sum())
            if kind == "number":
                x = s.to_numpy(dtype="float64", na_value=np.nan).reshape(-1, 1)
                n, mean, m2 = _moments(x)
                with np.errstate(all="ignore"):
                    lo = float(np.nanmin(x)) if n[0] else np.nan
                    hi = float(np.nanmax(x)) if n[0] else np.nan
                out.append((missing, (n, mean, m2), lo, hi, None, False))
            elif kind == "datetime":
                valid = s.dropna()
                out.append((missing, None, valid.min() if len(valid) else None,
                            valid.max() if len(valid) else None, None, False))
            else:
                counts = s.value_counts(dropna=True)
                capped = len(counts) > _DISTINCT_CAP
                out.append((missing, None, None, None, counts.iloc[:_DISTINCT_CAP], capped))
        return len(pdf), out

    return stats


def _kind(dtype: Any) -> str:
    if pt.is_bool_dtype(dtype):
        return "category"
    if pt.is_numeric_dtype(dtype):
        return "number"
    if pt.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "category"


def profile(
    data: Any,
    *,
    top: int = 3,
    name: str | None = None,
    storage_options: dict[str, Any] | None = None,
    client: Any = None,
    progress: bool | None = None,
    **read_kw: Any,
) -> Profile:
    """Profile a DataFrame or a dataset path in one pass (on the cluster for dask).

    Parameters
    ----------
    data : pandas or dask DataFrame, or str / os.PathLike
        A path is read with :func:`mlkit.data.read` (``storage_options`` and ``read_kw`` pass
        through).
    top : int
        Most frequent values listed per text/category column.
    name : str, optional
        Title (default: the path).

    Returns
    -------
    Profile
        Displays as an HTML table in Jupyter; ``.table`` is a pandas DataFrame.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.data.profile("data/demo").table.loc["f0", "mean"]      # doctest: +SKIP
    """
    if isinstance(data, (str, os.PathLike)):
        from mlkit.data._read import read

        name = name or os.fspath(data)
        data = read(data, storage_options=storage_options, **read_kw)
    if not (isinstance(data, pd.DataFrame) or is_dask(data)):
        raise DataError(
            f"profile needs a DataFrame or a dataset path, but got {type(data).__name__}"
        )
    _args.non_negative_int("top", top, error=DataArgumentError)
    names = [str(c) for c in data.columns]
    dtypes = list(data.dtypes)
    kinds = [_kind(t) for t in dtypes]
    results = per_partition(_partial(kinds, names), data, client, progress)
    rows = sum(n for n, _ in results)
    if rows == 0:
        raise DataError("nothing to profile: the dataset is empty (0 rows)")
    records = []
    for j in range(len(names)):
        parts = [r[1][j] for r in results]
        missing = sum(p[0] for p in parts)
        rec: dict[str, Any] = {
            "dtype": str(dtypes[j]), "missing": missing,
            "missing_%": round(100.0 * missing / rows, 2),
            "min": None, "max": None, "mean": None, "std": None, "distinct": None, "top": "",
        }
        if kinds[j] == "number":
            n, mean, m2 = _combine([p[1] for p in parts])
            lows = [p[2] for p in parts if not np.isnan(p[2])]
            highs = [p[3] for p in parts if not np.isnan(p[3])]
            if n[0] > 0:
                rec.update(min=min(lows), max=max(highs), mean=float(mean[0]),
                           std=float(np.sqrt(m2[0] / n[0])))
        elif kinds[j] == "datetime":
            lows = [p[2] for p in parts if p[2] is not None]
            highs = [p[3] for p in parts if p[3] is not None]
            if lows:
                rec.update(min=str(min(lows)), max=str(max(highs)))
        else:
            counts = pd.concat([p[4] for p in parts]).groupby(level=0, sort=False).sum()
            approx = any(p[5] for p in parts)
            counts = counts.sort_values(ascending=False, kind="stable")
            best = counts.head(top)
            rec["distinct"] = f">={len(counts)}" if approx else len(counts)
            share = [f"{v} ({100.0 * c / rows:.1f}%)" for v, c in best.items()]
            rec["top"] = ("~ " if approx else "") + ", ".join(share)
        records.append(rec)
    table = pd.DataFrame(records, index=pd.Index(names, name="column"))
    return Profile(rows, table, name or "")
