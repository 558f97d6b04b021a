"""Schemas and validation on the cluster, with pandera doing the checking.

Why pandera, and how: pandera's dask support validates lazily, partition by partition, but a
failing ``compute`` raises with the failures of the first bad partition only. A data report
needs totals over the whole dataset, so mlkit runs pandera's (pandas) validation inside each
partition, where the failures are summarised (per column and rule: a count and a few example
values), and adds the small summaries up on the client: one pass over the data, pandera's
checks and messages, and any pandera ``DataFrameSchema`` accepted as the schema.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.data._progress import per_partition
from mlkit.exceptions import DataError, DataValidationError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
    import pandas.api.types as pt
else:
    np = require("numpy")
    pd = require("pandas")
    pt = require("pandas.api.types")

__all__ = ["Column", "Schema", "ValidationReport", "validate"]

_RULE_WIDTH = 80
# Text comes as "str" from pandas, "string" (pyarrow, NA) from dask's readers and "object" from
# JSON requests: one kind of column, so the schema says "str" and accepts any of them.
_TEXT = ("str", "string", "string[pyarrow]", "string[python]", "object")


def _is_text(dtype: Any) -> bool:
    return pt.is_string_dtype(dtype) or pt.is_object_dtype(dtype)


@dataclass
class Column:
    """What one column must look like.

    Parameters
    ----------
    dtype : str, optional
        pandas dtype name (``"float64"``, ``"int64"``, ``"str"``, ``"bool"`` ...); None: any.
    nullable : bool
        Whether missing values are allowed.
    min, max : float, optional
        Inclusive bounds for numeric values.
    allowed : list, optional
        The only values allowed (categories).

    Examples
    --------
    >>> Column("float64", nullable=False, min=0.0)
    Column(dtype='float64', nullable=False, min=0.0, max=None, allowed=None)
    """

    dtype: str | None = None
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None

    def to_pandera(self, name: str, text_dtype: bool = True) -> Any:
        """The pandera column; ``text_dtype=False`` leaves a text dtype to mlkit's own check."""
        import pandera.pandas as pa

        checks = []
        if self.min is not None and self.max is not None:
            checks.append(pa.Check.in_range(self.min, self.max))
        elif self.min is not None:
            checks.append(pa.Check.ge(self.min))
        elif self.max is not None:
            checks.append(pa.Check.le(self.max))
        if self.allowed is not None:
            checks.append(pa.Check.isin(list(self.allowed)))
        dtype = pd.api.types.pandas_dtype(self.dtype) if self.dtype else None
        if self.dtype in _TEXT and not text_dtype:
            dtype = None
        return pa.Column(dtype, checks=checks, nullable=self.nullable, name=name)


@dataclass
class Schema:
    """Column name -> :class:`Column`. Build one by hand or with :meth:`Schema.infer`.

    Examples
    --------
    >>> s = Schema({"age": Column("int64", nullable=False, min=0, max=130),
    ...             "city": Column("str", allowed=["Paris", "Rome"])})
    >>> sorted(s.columns)
    ['age', 'city']
    >>> Schema.from_dict(s.to_dict()) == s
    True
    """

    columns: dict[str, Column] = field(default_factory=dict)

    @classmethod
    def infer(
        cls,
        df: Any,
        *,
        bounds: bool = True,
        max_categories: int = 20,
        client: Any = None,
        progress: bool | None = None,
    ) -> Schema:
        """A schema describing a reference DataFrame, computed in one pass (on the cluster for
        dask): dtypes; ``nullable`` where missing values occur; numeric min/max (``bounds``);
        ``allowed`` values for text/category columns with at most ``max_categories`` values.

        Examples
        --------
        >>> import pandas as pd
        >>> s = Schema.infer(pd.DataFrame({"x": [1.0, 2.5], "c": ["a", "b"]}))
        >>> s.columns["x"]
        Column(dtype='float64', nullable=False, min=1.0, max=2.5, allowed=None)
        >>> s.columns["c"].allowed
        ['a', 'b']
        """
        if not (isinstance(df, pd.DataFrame) or hasattr(df, "to_delayed")):
            raise DataError(
                f"Schema.infer needs a pandas or dask DataFrame, got {type(df).__name__}"
            )
        dtypes = df.dtypes
        names = [str(c) for c in df.columns]
        numeric = [pt.is_numeric_dtype(t) and not pt.is_bool_dtype(t) for t in dtypes]
        text = [pt.is_string_dtype(t) or pt.is_object_dtype(t) or isinstance(
            t, pd.CategoricalDtype) for t in dtypes]
        cap = max_categories

        def partial(pdf: pd.DataFrame) -> list[tuple[Any, ...]]:
            out: list[tuple[Any, ...]] = []
            for name, num, txt in zip(names, numeric, text, strict=True):
                s = pdf[name]
                nulls = int(s.isna().sum())
                if num and len(s) > nulls:
                    out.append((len(s), nulls, float(s.min()), float(s.max()), None))
                elif txt:
                    values = s.dropna().unique()
                    out.append((len(s), nulls, None, None,
                                None if len(values) > cap else list(values)))
                else:
                    out.append((len(s), nulls, None, None, None))
            return out

        results = per_partition(partial, df, client, progress)
        if sum(r[0][0] for r in results if r) == 0:
            raise DataError("cannot infer a schema from an empty dataset (0 rows)")
        columns = {}
        for j, name in enumerate(names):
            parts = [r[j] for r in results]
            dtype = "str" if text[j] and not isinstance(dtypes.iloc[j], pd.CategoricalDtype) \
                else str(dtypes.iloc[j])
            col = Column(dtype=dtype, nullable=any(p[1] for p in parts))
            if numeric[j] and bounds:
                lows = [p[2] for p in parts if p[2] is not None]
                highs = [p[3] for p in parts if p[3] is not None]
                if lows:
                    col.min, col.max = min(lows), max(highs)
            if text[j] and all(p[4] is not None for p in parts):
                values = {v for p in parts for v in p[4]}
                if len(values) <= cap:
                    try:
                        col.allowed = sorted(values)
                    except TypeError:  # mixed types: keep first-seen order
                        col.allowed = list(values)
            columns[name] = col
        return cls(columns)

    def to_pandera(self, text_dtype: bool = True) -> Any:
        """The equivalent ``pandera.pandas.DataFrameSchema`` (extra columns allowed).

        Examples
        --------
        >>> Schema({"x": Column("float64", min=0)}).to_pandera().columns["x"].nullable
        True
        """
        import pandera.pandas as pa

        return pa.DataFrameSchema(
            {name: col.to_pandera(name, text_dtype) for name, col in self.columns.items()}
        )

    def _text_dtype_failures(self, dtypes: pd.Series) -> list[tuple[str, str]]:
        """(column, rule) for text columns whose dtype is not text: read from the schema of
        the data, no pass needed."""
        out = []
        for name, col in self.columns.items():
            if col.dtype in _TEXT and name in dtypes.index and not _is_text(dtypes[name]):
                out.append((name, f"dtype: expected {col.dtype}, got {dtypes[name]}"))
        return out

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-friendly form (e.g. to log beside a model).

        Examples
        --------
        >>> Schema({"x": Column("int64", nullable=False)}).to_dict()["x"]["nullable"]
        False
        """
        out = {}
        for name, col in self.columns.items():
            d = asdict(col)
            d["allowed"] = None if col.allowed is None else [
                v.item() if isinstance(v, np.generic) else v for v in col.allowed
            ]
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, Any]]) -> Schema:
        """Inverse of :meth:`to_dict`.

        Examples
        --------
        >>> Schema.from_dict({"x": {"dtype": "str", "allowed": ["a"]}}).columns["x"].allowed
        ['a']
        """
        try:
            return cls({name: Column(**spec) for name, spec in data.items()})
        except TypeError as exc:
            raise DataError(f"not a schema dictionary: {exc}") from exc


@dataclass
class ValidationReport:
    """The result of :func:`validate`.

    Attributes
    ----------
    rows : int
        Rows checked.
    columns : list of str
        Columns the schema checks.
    failures : pandas.DataFrame
        One row per (column, rule) that failed: ``violations`` (values that broke the rule;
        every row for a wrong dtype) and ``examples`` (offending values; row labels for missing
        values).
    """

    rows: int
    columns: list[str]
    failures: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.failures.empty

    @property
    def violations(self) -> dict[str, int]:
        """Per checked column: rule violations (0 for a clean column)."""
        counts = self.failures.groupby("column", sort=False)["violations"].sum()
        return {c: int(counts.get(c, 0)) for c in self.columns}

    def message(self) -> str:
        """One line per failed (column, rule), with counts and examples.

        Examples
        --------
        >>> print(validate(pd.DataFrame({"x": [1.0]}), Schema({"x": Column("float64")})).message())
        1 rows x 1 columns: all checks passed
        """
        if self.ok:
            return f"{self.rows} rows x {len(self.columns)} columns: all checks passed"
        lines = [f"{len(self.failures)} failed check(s) over {self.rows} rows:"]
        for row in self.failures.itertuples():
            lines.append(
                f"  column {row.column!r}: {row.rule} -- {row.violations} violation(s), "
                f"e.g. {row.examples}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message()

    def _repr_html_(self) -> str:
        head = f"<b>{'OK' if self.ok else 'FAILED'}</b>: {self.rows} rows, " \
               f"{len(self.columns)} columns checked"
        if self.ok:
            return f"<div>{head}</div>"
        body = "".join(
            f"<tr><td>{html.escape(str(r.column))}</td><td>{html.escape(r.rule)}</td>"
            f"<td style='text-align:right'>{r.violations}</td>"
            f"<td>{html.escape(str(r.examples))}</td></tr>"
            for r in self.failures.itertuples()
        )
        return (f"<div>{head}<table><thead><tr><th>column</th><th>rule</th><th>violations</th>"
                f"<th>examples</th></tr></thead><tbody>{body}</tbody></table></div>")


def _summarise(pdf: pd.DataFrame, schema: Any, examples: int) -> tuple[int, list[tuple]]:
    """Runs in each partition: pandera's failure cases boiled down to counts and examples."""
    import pandera.errors

    try:
        schema.validate(pdf, lazy=True)
        return len(pdf), []
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    out = []
    for (col, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        rule = str(check)
        if rule.startswith("dtype("):
            got = str(group["failure_case"].iloc[0])
            want = rule[len("dtype("):-1].strip("'")
            out.append((col, f"dtype: expected {want}, got {got}", len(pdf), [got]))
            continue
        if rule == "not_nullable":
            shown = group["index"].head(examples).tolist()
            out.append((col, "not nullable", len(group), shown))
            continue
        values = group["failure_case"].tolist()
        shown = list(dict.fromkeys(v.item() if isinstance(v, np.generic) else v
                                   for v in values))[:examples]
        if len(rule) > _RULE_WIDTH:
            rule = rule[: _RULE_WIDTH - 3] + "..."
        out.append((col, rule, len(group), shown))
    return len(pdf), out


def validate(
    df: Any,
    schema: Schema | Any,
    *,
    strict: bool = False,
    examples: int = 5,
    client: Any = None,
    progress: bool | None = None,
) -> ValidationReport:
    """Check a pandas or dask DataFrame against a schema in one pass (on the cluster for dask).

    Parameters
    ----------
    df : pandas or dask DataFrame
    schema : Schema or pandera.pandas.DataFrameSchema
    strict : bool
        Raise :class:`~mlkit.exceptions.DataValidationError` (with ``.report``) naming every
        failing column and rule, instead of returning a failing report.
    examples : int
        Example offending values kept per column and rule.

    Returns
    -------
    ValidationReport

    Raises
    ------
    DataValidationError
        Before reading any data, when the schema names columns the data lacks; with
        ``strict=True``, when any check fails.

    Examples
    --------
    >>> import mlkit
    >>> schema = mlkit.data.Schema.infer(reference)                 # doctest: +SKIP
    >>> report = mlkit.data.validate(new_data, schema)              # doctest: +SKIP
    >>> report.ok, report.violations                                # doctest: +SKIP
    """
    import pandera.pandas as pa

    text_failures: list[tuple[str, str]] = []
    if isinstance(schema, Schema):
        checker = schema.to_pandera(text_dtype=False)
        text_failures = schema._text_dtype_failures(df.dtypes)
    elif isinstance(schema, pa.DataFrameSchema):
        checker = schema
    else:
        raise DataError(
            f"schema must be an mlkit.data.Schema or a pandera DataFrameSchema, got "
            f"{type(schema).__name__}"
        )
    if not (isinstance(df, pd.DataFrame) or hasattr(df, "to_delayed")):
        raise DataError(f"validate needs a pandas or dask DataFrame, got {type(df).__name__}")
    have = [str(c) for c in df.columns]
    wanted = [str(name) for name in checker.columns]
    lacking = [
        name for name, col in checker.columns.items() if col.required and str(name) not in have
    ]
    if lacking:
        raise DataValidationError(
            f"the schema names column(s) {lacking} that the data lacks (it has {have}); "
            "fix the column names, or drop them from the schema"
        )

    def partial(pdf: pd.DataFrame) -> tuple[int, list[tuple]]:
        return _summarise(pdf, checker, examples)

    results = per_partition(partial, df, client, progress)
    rows = sum(n for n, _ in results)
    if rows == 0:
        raise DataError("nothing to validate: the dataset is empty (0 rows)")
    merged: dict[tuple[str, str], list] = {
        (col, rule): [rows, [str(df.dtypes[col])]] for col, rule in text_failures
    }
    for _, found in results:
        for col, rule, count, shown in found:
            slot = merged.setdefault((col, rule), [0, []])
            slot[0] += count
            slot[1] = list(dict.fromkeys([*slot[1], *shown]))[:examples] if all(
                _hashable(v) for v in shown) else (slot[1] + shown)[:examples]
    order = {c: i for i, c in enumerate(wanted)}
    failures = pd.DataFrame(
        [(c, r, n, ex) for (c, r), (n, ex) in merged.items()],
        columns=["column", "rule", "violations", "examples"],
    )
    if not failures.empty:
        failures = failures.sort_values(
            "column", key=lambda s: s.map(lambda c: order.get(c, len(order))), kind="stable"
        ).reset_index(drop=True)
    report = ValidationReport(rows, wanted, failures)
    if strict and not report.ok:
        raise DataValidationError("data does not match the schema: " + report.message(), report)
    return report


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
