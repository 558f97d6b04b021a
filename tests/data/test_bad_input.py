"""Each bad input gives ONE clear DataError naming the file / column / value, and nothing
half-written is left behind."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import DataError


def _listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match=r"'.*nope.parquet' does not exist"):
        mlkit.data.read(str(tmp_path / "nope.parquet"))
    with pytest.raises(DataError, match=r"no files match '.*\*.csv'"):
        mlkit.data.read(str(tmp_path / "*.csv"))
    (tmp_path / "data.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match=r"unknown format for '.*data.json'.*format='csv'"):
        mlkit.data.read(str(tmp_path / "data.json"))
    with pytest.raises(DataError, match=r"unknown format 'orc'.*use format='parquet'"):
        mlkit.data.read(str(tmp_path / "data.json"), format="orc")
    mix = tmp_path / "mix"
    mix.mkdir()
    (mix / "x.csv").write_text("a\n1\n")
    (mix / "y.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="mixes Parquet and CSV"):
        mlkit.data.read(str(mix))
    with pytest.raises(DataError, match=r"'.*y.parquet' is not a readable Parquet file"):
        mlkit.data.read(str(mix / "y.parquet"))


def test_empty_datasets(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"folder '.*empty' holds no data files \(empty dataset\)"):
        mlkit.data.read(str(tmp_path / "empty"))
    (tmp_path / "zero.csv").write_text("")
    with pytest.raises(DataError, match=r"zero.csv' holds no rows \(empty dataset\)"):
        mlkit.data.read(str(tmp_path / "zero.csv"))
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"header.csv' holds no rows"):
        mlkit.data.read(str(tmp_path / "header.csv"))
    pd.DataFrame({"a": np.array([], dtype=float)}).to_parquet(tmp_path / "none.parquet")
    with pytest.raises(DataError, match=r"none.parquet' holds no rows \(empty dataset\)"):
        mlkit.data.read(str(tmp_path / "none.parquet"))


def test_ragged_csv_rows(tmp_path, cluster):
    small = tmp_path / "ragged.csv"
    small.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n")
    with pytest.raises(DataError, match=r"ragged.csv': rows have different numbers of fields "
                                        r"\(.*Expected 3 fields in line 4, saw 4"):
        mlkit.data.read(str(small))
    # a bad row far beyond the sample dask reads up front: found on the cluster, same error
    big = tmp_path / "late.csv"
    rows = "\n".join(f"{i},{i * 2},{i % 7}" for i in range(60_000))
    big.write_text("a,b,c\n" + rows + "\n1,2,3,4\n")
    df = mlkit.data.read(str(big), blocksize=200_000)
    assert df.npartitions > 1
    with pytest.raises(DataError, match=r"late.csv': rows have different numbers of fields"):
        df["a"].sum().compute()
    # the documented way out
    kept = mlkit.data.read(str(big), blocksize=200_000, on_bad_lines="skip")
    assert len(kept) == 60_000


def test_mixed_types_csv_and_parquet(tmp_path, cluster):
    late = tmp_path / "mixed.csv"
    rows = "\n".join(f"{i},{i * 0.5}" for i in range(60_000))
    late.write_text("id,x\n" + rows + "\n60000,abc\n60001,1.5\n")
    df = mlkit.data.read(str(late), blocksize=200_000)
    assert str(df.dtypes["x"]) == "float64"
    with pytest.raises(DataError, match=r"column 'x' of '.*mixed.csv' has mixed types: its first "
                                        r"rows are float64 but it also holds \['abc'\]"):
        df.compute()
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame({"k": [1.0, 2.0], "v": ["a", "b"]}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"k": ["x", "y"], "v": ["c", "d"]}).to_parquet(folder / "b.parquet")
    with pytest.raises(DataError, match=r"column 'k' has mixed types: double in '.*a.parquet' "
                                        r"but (large_)?string in '.*b.parquet'"):
        mlkit.data.read(str(folder))
    pd.DataFrame({"v": ["e"]}).to_parquet(folder / "b.parquet")
    with pytest.raises(DataError, match=r"column 'k' is in '.*a.parquet' but missing from"):
        mlkit.data.read(str(folder))


def test_failed_write_leaves_nothing_behind(tmp_path, cluster):
    bad = tmp_path / "late.csv"
    rows = "\n".join(f"{i},{i * 2}" for i in range(60_000))
    bad.write_text("a,b\n" + rows + "\n1,2,3\n")
    out = tmp_path / "out"
    out.mkdir()
    df = mlkit.data.read(str(bad), blocksize=150_000)
    with pytest.raises(DataError, match="rows have different numbers of fields"):
        mlkit.data.write(df, str(out / "features"))
    assert _listing(out) == []  # neither the dataset nor its temporary folder
    mlkit.data.write(df.head(10, compute=False), str(out / "features"))
    with pytest.raises(DataError, match=r"'.*features' already exists: choose another path or "
                                        r"pass overwrite=True"):
        mlkit.data.write(df.head(5, compute=False), str(out / "features"))
    assert len(mlkit.data.read(str(out / "features"))) == 10
    assert _listing(out) == ["features"]


def test_interrupted_synthetic_leaves_nothing_and_cluster_usable(tmp_path, cluster, monkeypatch):
    from mlkit.data import _progress

    out = tmp_path / "out"
    out.mkdir()
    real_compute = _progress.compute

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # the notebook's stop button, while the tasks run

    monkeypatch.setattr("mlkit.data._synthetic.compute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mlkit.data.synthetic(str(out / "d"), rows=1000, features=2, partitions=2)
    assert _listing(out) == []
    monkeypatch.setattr("mlkit.data._synthetic.compute", real_compute)
    assert len(mlkit.data.read(mlkit.data.synthetic(str(out / "d"), rows=1000, features=2))) == 1000


def test_ragged_row_in_one_of_several_csv_files_names_that_file(tmp_path, cluster):
    folder = tmp_path / "csv_early"
    folder.mkdir()
    for i in range(4):
        rows = "\n".join(f"{j},{j * 2},{j % 7}" for j in range(50))
        if i == 2:
            rows += "\n1,2,3,4"  # line 52 of part2.csv only
        (folder / f"part{i}.csv").write_text("a,b,c\n" + rows + "\n")
    # typed as a plain path: the error shows the plain path of the bad file, no file:// URL
    with pytest.raises(DataError) as info:
        mlkit.data.read(str(folder / "*.csv"))["a"].sum().compute()
    msg = str(info.value)
    assert msg.startswith(f"{str(folder / 'part2.csv')!r}: rows have different numbers of fields")
    assert "file://" not in msg and "part0.csv" not in msg
    # the good files still read as one frame, in order
    good = tmp_path / "good"
    good.mkdir()
    for i in (0, 1):
        (good / f"p{i}.csv").write_text("a,b\n" + "\n".join(f"{i},{j}" for j in range(5)) + "\n")
    df = mlkit.data.read(str(good)).compute()
    assert df["a"].tolist() == [0] * 5 + [1] * 5 and df["b"].tolist() == list(range(5)) * 2
