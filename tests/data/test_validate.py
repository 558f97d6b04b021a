"""Schema.infer and validate(): one pass on the cluster, totals over every partition (pandera
checks each partition), strict mode naming every failing column and rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

import mlkit
from mlkit.data import Column, Schema
from mlkit.exceptions import DataError, DataValidationError


@pytest.fixture
def data(small):
    return mlkit.data.read(small)


def test_infer_describes_the_reference(data):
    schema = Schema.infer(data)
    pdf = data.compute()
    assert list(schema.columns) == list(pdf.columns)
    f0 = schema.columns["f0"]
    assert f0.dtype == "float64" and f0.nullable  # synthetic(missing=0.05)
    assert f0.min == pdf["f0"].min() and f0.max == pdf["f0"].max()
    assert schema.columns["c0"].allowed == sorted(pdf["c0"].dropna().unique())
    assert schema.columns["c0"].dtype == "str"
    assert schema.columns["target"] == Column("int64", nullable=False, min=0.0, max=1.0)
    # JSON round trip (to log it beside a model)
    assert Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema
    assert Schema.infer(data, max_categories=3).columns["c0"].allowed is None
    assert Schema.infer(data, bounds=False).columns["f0"].min is None


def test_reference_passes_and_violations_are_totalled_over_partitions(data):
    schema = Schema.infer(data)
    assert mlkit.data.validate(data, schema).ok
    pdf = data.compute()
    bad = data.assign(
        f0=data["f0"] * 2,                                   # out of the inferred range
        c0=data["c0"].where(data["f1"] > -1.5, "zz"),          # unseen category
        target=data["target"].astype("float64"),               # wrong dtype
    )
    report = mlkit.data.validate(bad, schema)
    assert not report.ok and report.rows == len(pdf)
    lo, hi = pdf["f0"].min(), pdf["f0"].max()
    expected_f0 = int(((pdf["f0"] * 2 < lo) | (pdf["f0"] * 2 > hi)).sum())
    # where() keeps c0 only where f1 > -1.5 holds, so a missing f1 also turns c0 into "zz"
    expected_c0 = int((~(pdf["f1"] > -1.5)).sum())
    assert report.violations["f0"] == expected_f0 > 0
    assert report.violations["c0"] == expected_c0 > 0
    assert report.violations["target"] == len(pdf)
    assert report.violations["f1"] == 0
    rows = report.failures.set_index("column")
    assert rows.loc["c0", "examples"] == ["zz"]
    assert rows.loc["target", "rule"] == "dtype: expected int64, got float64"
    shown = rows.loc["f0", "examples"]
    assert len(shown) == 5 and all(v < lo or v > hi for v in shown)
    assert "<table>" in report._repr_html_()


def test_strict_raises_naming_every_column_and_rule(data):
    schema = Schema({
        "f0": Column("float64", nullable=False),
        "f1": Column("float64", min=-1, max=1),
        "c1": Column("str", allowed=["a", "b"]),
        "target": Column("int64"),
    })
    with pytest.raises(DataValidationError) as info:
        mlkit.data.validate(data, schema, strict=True)
    msg = str(info.value)
    assert "column 'f0': not nullable" in msg
    assert "column 'f1': in_range(-1, 1)" in msg
    assert "column 'c1': isin(['a', 'b'])" in msg
    assert "'target'" not in msg
    report = info.value.report
    assert set(report.failures["column"]) == {"f0", "f1", "c1"}
    nulls = int(data["f0"].isna().sum().compute())
    assert report.violations["f0"] == nulls


def test_pandas_input_and_a_pandera_schema(data):
    pdf = data.compute()
    custom = pa.DataFrameSchema({"f2": pa.Column(float, pa.Check.lt(0), nullable=True)})
    report = mlkit.data.validate(pdf, custom)
    assert report.violations == {"f2": int((pdf["f2"] >= 0).sum())}
    on_dask = mlkit.data.validate(data, custom)
    assert on_dask.violations == report.violations
    # a schema inferred on dask (text read as "string") accepts text as pandas/JSON give it
    inferred = Schema.infer(data)
    assert mlkit.data.validate(pdf.astype({"c0": object, "c1": "str"}), inferred).ok
    wrong = mlkit.data.validate(pdf.assign(c0=1.5), inferred)
    dtype_rows = wrong.failures[wrong.failures["rule"].str.startswith("dtype")]
    assert dtype_rows[["column", "rule", "violations"]].values.tolist() == [
        ["c0", "dtype: expected str, got float64", len(pdf)]
    ]


def test_bad_input(data):
    schema = Schema({"f0": Column("float64"), "nope": Column("int64"), "gone": Column()})
    with pytest.raises(DataValidationError, match=r"names column\(s\) \['nope', 'gone'\] that "
                                                  r"the data lacks"):
        mlkit.data.validate(data, schema)
    with pytest.raises(DataError, match="empty"):
        mlkit.data.validate(data[data["f0"] > 1e9], Schema({"f0": Column("float64")}))
    with pytest.raises(DataError, match="empty"):
        Schema.infer(pd.DataFrame({"x": np.array([], dtype=float)}))
    with pytest.raises(DataError, match="schema must be"):
        mlkit.data.validate(data, {"f0": "float64"})
