"""split (deterministic; keyed splits stable across repartitioning), fingerprint (stable when
re-read; recorded in an active MLflow run) and the profile table / %mlscale data profile."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import ConfigError, DataError


@pytest.fixture
def frame(small):
    ddf = mlkit.data.read(small)
    return ddf.assign(customer=(ddf["f0"].fillna(0) * 1000).round().astype("int64") % 97)


def _ids(part) -> set:
    pdf = part.compute() if hasattr(part, "compute") else part
    # the four features identify a row (all four missing at once: ~1 in 160,000 rows)
    return set(pdf[["f0", "f1", "f2", "f3"]].fillna(-99).itertuples(index=False, name=None))


def test_split_is_a_deterministic_partition_of_the_rows(frame):
    parts = mlkit.data.split(frame, (0.6, 0.3, 0.1), seed=1)
    again = mlkit.data.split(frame, (0.6, 0.3, 0.1), seed=1)
    sizes = [len(p) for p in parts]
    assert sum(sizes) == 3000
    assert abs(sizes[0] - 1800) < 150 and abs(sizes[2] - 300) < 80
    for a, b in zip(parts, again, strict=True):
        pd.testing.assert_frame_equal(a.compute(), b.compute())
    ids = [_ids(p) for p in parts]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])
    other = mlkit.data.split(frame, (0.6, 0.3, 0.1), seed=2)
    assert _ids(other[0]) != ids[0]


def test_keyed_split_is_stable_across_repartitioning_and_keeps_keys_together(frame):
    train, test = mlkit.data.split(frame, (0.8, 0.2), key="customer", seed=5)
    moved = frame.repartition(npartitions=7)
    train2, test2 = mlkit.data.split(moved, (0.8, 0.2), key="customer", seed=5)
    assert _ids(train) == _ids(train2) and _ids(test) == _ids(test2)
    a, b = set(train["customer"].compute()), set(test["customer"].compute())
    assert a and b and not (a & b)  # every customer entirely on one side
    pdf = frame.compute()
    p_train, p_test = mlkit.data.split(pdf, (0.8, 0.2), key="customer", seed=5)
    assert isinstance(p_train, pd.DataFrame)
    assert _ids(p_train) == _ids(train)  # pandas and dask agree


def test_split_bad_input(frame):
    with pytest.raises(ConfigError, match=r"fractions must sum to 1, but \(0.8, 0.1\) sums to 0.9"):
        mlkit.data.split(frame, (0.8, 0.1))
    with pytest.raises(ConfigError, match="two or more positive"):
        mlkit.data.split(frame, (1.0,))
    with pytest.raises(ConfigError, match="positive"):
        mlkit.data.split(frame, (1.2, -0.2))
    with pytest.raises(DataError, match=r"key column\(s\) \['nope'\] not in the data"):
        mlkit.data.split(frame, key="nope")


def test_fingerprint_stable_when_reread_and_sensitive_to_changes(small, tmp_path):
    fp = mlkit.data.fingerprint(mlkit.data.read(small))
    assert fp.rows == 3000 and len(fp.digest) == 16
    again = mlkit.data.fingerprint(mlkit.data.read(small).repartition(npartitions=2))
    assert again == fp
    pdf = mlkit.data.read(small).compute()
    assert mlkit.data.fingerprint(pdf) == fp  # pandas in memory: same data, same fingerprint
    pdf.to_csv(tmp_path / "same.csv", index=False)
    from_csv = mlkit.data.fingerprint(mlkit.data.read(str(tmp_path / "same.csv"), blocksize=30_000))
    assert from_csv.content == fp.content and from_csv.schema == fp.schema
    changed = pdf.copy()
    changed.loc[17, "f3"] = 0.5
    assert mlkit.data.fingerprint(changed).content != fp.content
    assert mlkit.data.fingerprint(pdf.iloc[1:]).rows == 2999
    renamed = mlkit.data.fingerprint(pdf.rename(columns={"f0": "g0"}))
    assert renamed.schema != fp.schema and renamed.digest != fp.digest


def test_fingerprint_is_logged_in_an_active_mlflow_run(small):
    import mlflow

    ddf = mlkit.data.read(small)
    with mlkit.track.run("fp") as run:
        fp = mlkit.data.fingerprint(ddf, name="demo", source=small)
    got = mlflow.get_run(run.info.run_id)
    inputs = got.inputs.dataset_inputs
    assert len(inputs) == 1
    ds = inputs[0].dataset
    assert (ds.name, ds.digest) == ("demo", fp.digest)
    tags = {t.key: t.value for t in inputs[0].tags}
    assert tags["mlkit.rows"] == "3000" and tags["mlkit.content_hash"] == fp.content
    assert got.info.status == "FINISHED"
    # without a run: nothing logged and no error
    assert mlflow.active_run() is None
    assert mlkit.data.fingerprint(ddf) == fp


def test_fingerprint_does_not_import_mlflow():
    code = (
        "import sys, pandas as pd, mlkit\n"
        "mlkit.data.fingerprint(pd.DataFrame({'x': [1, 2]}))\n"
        "print('mlflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_profile_table_matches_pandas(small):
    prof = mlkit.data.profile(small, top=2)
    pdf = mlkit.data.read(small).compute()
    t = prof.table
    assert prof.rows == 3000 and list(t.index) == list(pdf.columns)
    assert t.loc["f0", "missing"] == pdf["f0"].isna().sum()
    assert t.loc["f0", "mean"] == pytest.approx(pdf["f0"].mean(), rel=1e-12)
    assert t.loc["f0", "std"] == pytest.approx(pdf["f0"].std(ddof=0), rel=1e-9)
    assert (t.loc["f1", "min"], t.loc["f1", "max"]) == (pdf["f1"].min(), pdf["f1"].max())
    counts = pdf["c0"].value_counts()
    assert t.loc["c0", "distinct"] == len(counts)
    first = counts.index[0]
    assert t.loc["c0", "top"].startswith(f"{first} ({100 * counts.iloc[0] / 3000:.1f}%)")
    assert t.loc["c0", "top"].count("%") == 2
    html = prof._repr_html_()
    assert "<table>" in html and "3000 rows" in html and "c0" in html
    assert "3000 rows x 7 columns" in str(prof)
    with pytest.raises(DataError, match="does not exist"):
        mlkit.data.profile(small + "-missing")
    with pytest.raises(DataError, match="empty"):
        mlkit.data.profile(pdf.iloc[:0])


def test_profile_magic_on_a_variable_and_a_path(shell, small, cluster):
    shell.user_ns["df"] = mlkit.data.read(small)
    prof = shell.run_line_magic("mlscale", "data profile df --top 1")
    assert isinstance(prof, mlkit.data.Profile) and prof.name == "df" and prof.rows == 3000
    assert prof.table.loc["c0", "top"].count("%") == 1
    by_path = shell.run_line_magic("mlscale", f"data profile {small}")
    assert by_path.name == small
    pd.testing.assert_frame_equal(by_path.table.drop(columns="top"), prof.table.drop(columns="top"))
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        shell.run_line_magic("mlscale", "data profile no_such_thing")
