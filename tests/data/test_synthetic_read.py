"""synthetic() writes deterministic Parquet on the cluster; read() loads files, folders, globs,
CSV and S3 (a real moto server) into dask."""

from __future__ import annotations

import hashlib
import os

import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import ConfigError, DataError


def _digests(folder) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(folder))
    }


def test_synthetic_columns_types_and_size(tmp_path, cluster):
    path = mlkit.data.synthetic(
        str(tmp_path / "d"), rows=2500, features=3, categorical=2, categories=4, partitions=4
    )
    df = mlkit.data.read(path)
    assert df.npartitions == 4
    assert list(df.columns) == ["f0", "f1", "f2", "c0", "c1", "target"]
    pdf = df.compute()
    assert len(pdf) == 2500
    assert all(pdf[f"f{i}"].dtype == "float64" for i in range(3))
    assert pdf["target"].dtype == "int64" and set(pdf["target"]) == {0, 1}
    assert set(pdf["c0"].dropna()) == {"a", "b", "c", "d"}
    assert pdf.isna().sum().sum() == 0  # missing=0 by default


def test_synthetic_same_seed_same_bytes_and_partitioning_does_not_change_rows(tmp_path, cluster):
    kw = dict(rows=5000, features=3, categorical=1, missing=0.1, seed=3)
    a = mlkit.data.synthetic(str(tmp_path / "a"), partitions=3, **kw)
    b = mlkit.data.synthetic(str(tmp_path / "b"), partitions=3, **kw)
    c = mlkit.data.synthetic(str(tmp_path / "c"), partitions=5, **kw)
    d = mlkit.data.synthetic(str(tmp_path / "d"), partitions=3, **{**kw, "seed": 4})
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "d")
    rows_a = mlkit.data.read(a).compute().reset_index(drop=True)
    rows_c = mlkit.data.read(c).compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(rows_a, rows_c)
    assert not rows_a.equals(mlkit.data.read(d).compute().reset_index(drop=True))
    assert 0.05 < rows_a["f0"].isna().mean() < 0.15
    assert b == str(tmp_path / "b")


def test_synthetic_regression_and_multiclass(tmp_path, cluster):
    r = mlkit.data.read(mlkit.data.synthetic(str(tmp_path / "r"), rows=800, features=2,
                                             task="regression", partitions=2)).compute()
    assert r["target"].dtype == "float64" and r["target"].nunique() > 700
    m = mlkit.data.read(mlkit.data.synthetic(str(tmp_path / "m"), rows=3000, features=4,
                                             classes=3, partitions=2)).compute()
    assert set(m["target"]) == {0, 1, 2}


def test_synthetic_existing_path_rules(tmp_path, cluster):
    (tmp_path / "w").mkdir()
    path = str(tmp_path / "w" / "d")
    mlkit.data.synthetic(path, rows=100, features=2, partitions=1)
    before = _digests(tmp_path / "w" / "d")
    # same arguments: reused as is, no error
    mlkit.data.synthetic(path, rows=100, features=2, partitions=1)
    with pytest.raises(DataError, match="already exists.*overwrite=True"):
        mlkit.data.synthetic(path, rows=200, features=2, partitions=1)
    assert _digests(tmp_path / "w" / "d") == before
    mlkit.data.synthetic(path, rows=200, features=2, partitions=1, overwrite=True)
    assert len(mlkit.data.read(path)) == 200
    assert sorted(os.listdir(tmp_path / "w")) == ["d"]  # no temporary folder left


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rows": 0}, "rows must be an integer >= 1, but got rows=0"),
        ({"features": 2.5}, "features must be an integer >= 1, but got features=2.5"),
        ({"task": "ranking"}, "task must be 'classification' or 'regression', but got 'ranking'"),
        ({"missing": 1.5}, r"missing must be a fraction in \[0, 1\), but got 1.5"),
        ({"partitions": 11}, "partitions=11 exceeds rows=10"),
    ],
)
def test_synthetic_bad_arguments(tmp_path, kwargs, match):
    args = {"rows": 10, "features": 2, **kwargs}
    with pytest.raises(ConfigError, match=match):
        mlkit.data.synthetic(str(tmp_path / "x"), **args)
    assert not (tmp_path / "x").exists()


def test_read_file_folder_glob_and_columns(small):
    whole = mlkit.data.read(small)
    assert whole.npartitions == 3
    one = mlkit.data.read(os.path.join(small, "part.00001.parquet"))
    assert len(one) == 1000
    glob = mlkit.data.read(os.path.join(small, "part.0000[02].parquet"))
    assert len(glob) == 2000
    cols = mlkit.data.read(small, columns=["f1", "target"])
    assert list(cols.columns) == ["f1", "target"]
    url = mlkit.data.read("file://" + small)
    pd.testing.assert_frame_equal(url.compute(), whole.compute())


def test_read_csv_file_and_glob(tmp_path, small):
    pdf = mlkit.data.read(small).compute()
    pdf.iloc[:1500].to_csv(tmp_path / "a.csv", index=False)
    pdf.iloc[1500:].to_csv(tmp_path / "b.csv", index=False)
    df = mlkit.data.read(str(tmp_path / "*.csv"))
    got = df.compute().reset_index(drop=True)
    assert len(got) == 3000
    pd.testing.assert_series_equal(got["f0"], pdf["f0"].reset_index(drop=True), rtol=1e-12)
    assert (got["c0"].fillna("") == pdf["c0"].fillna("").reset_index(drop=True)).all()
    tsv = tmp_path / "t.tsv"
    pdf.iloc[:10].to_csv(tsv, sep="\t", index=False)
    assert list(mlkit.data.read(str(tsv), sep="\t").columns) == list(pdf.columns)


def test_read_and_write_s3_on_a_real_s3_api(s3, cluster):
    url = f"s3://{s3['bucket']}/syn"
    mlkit.data.synthetic(url, rows=2000, features=3, categorical=1, partitions=2,
                         storage_options=s3["options"])
    s3["fs"].invalidate_cache()
    names = sorted(p.rsplit("/", 1)[-1] for p in s3["fs"].ls(f"{s3['bucket']}/syn"))
    assert names == ["_mlkit_synthetic.json", "part.00000.parquet", "part.00001.parquet"]
    # nothing else (no temporary folder) in the bucket
    assert [p.rsplit("/", 1)[-1] for p in s3["fs"].ls(s3["bucket"])] == ["syn"]
    df = mlkit.data.read(url, storage_options=s3["options"])
    assert len(df) == 2000 and list(df.columns) == ["f0", "f1", "f2", "c0", "target"]
    # a CSV object, read through its URL
    with s3["fs"].open(f"{s3['bucket']}/t.csv", "w") as f:
        f.write("x,y\n1,a\n2,b\n")
    csv = mlkit.data.read(f"s3://{s3['bucket']}/t.csv", storage_options=s3["options"])
    assert csv.compute()["x"].tolist() == [1, 2]
    # write() goes through the same path
    out = f"s3://{s3['bucket']}/out"
    mlkit.data.write(df[["f0", "target"]], out, storage_options=s3["options"])
    back = mlkit.data.read(out, storage_options=s3["options"]).compute()
    assert back["f0"].sum() == pytest.approx(df["f0"].sum().compute())
    with pytest.raises(DataError, match="does not exist"):
        mlkit.data.read(f"s3://{s3['bucket']}/nope", storage_options=s3["options"])


def test_importing_mlkit_data_and_the_magic_loads_no_engine():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, mlkit, mlkit.data, mlkit.magics.data\n"
        "assert 'read' in dir(mlkit.data)\n"
        "print(json.dumps([m for m in ('pandas', 'dask', 'pyarrow', 'sklearn', 'pandera')"
        " if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
