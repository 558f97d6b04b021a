"""log_dataset: the fingerprint of mlkit.data, recorded in the active run, or a clear error."""

from __future__ import annotations

import dask.dataframe as dd
import mlflow
import numpy as np
import pandas as pd
import pytest

import mlkit
from mlkit.exceptions import ConfigError, DataError, TrackingError


def _frame(rows: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "f0": rng.normal(size=rows),
        "f1": rng.integers(0, 100, size=rows),
        "target": rng.integers(0, 2, size=rows),
    })


def test_log_dataset_records_an_mlflow_input_and_a_searchable_tag(client, tmp_path):
    df = _frame(500)
    with mlkit.track.run("fit", experiment="data") as r:
        # A dask frame is hashed on the cluster; the same rows as pandas give the same digest.
        fp = mlkit.track.log_dataset(dd.from_pandas(df, npartitions=4), "train",
                                     source=str(tmp_path / "train.parquet"))
        valid = mlkit.track.log_dataset(df.iloc[:100], "valid", context="validation")
    assert fp.digest == mlkit.data.fingerprint(df).digest and fp.rows == 500
    assert valid.digest != fp.digest
    got = mlflow.get_run(r.info.run_id)
    inputs = {i.dataset.name: i for i in got.inputs.dataset_inputs}
    assert set(inputs) == {"train", "valid"}
    assert inputs["train"].dataset.digest == fp.digest
    assert str(tmp_path / "train.parquet") in inputs["train"].dataset.source
    tags = {t.key: t.value for t in inputs["train"].tags}
    assert tags["mlflow.data.context"] == "training" and tags["mlkit.rows"] == "500"
    valid_tags = {t.key: t.value for t in inputs["valid"].tags}
    assert valid_tags["mlflow.data.context"] == "validation"
    assert got.data.tags["mlkit.dataset.train"] == fp.digest
    assert got.data.tags["mlkit.dataset.valid"] == valid.digest
    found = mlflow.search_runs(experiment_names=["data"], output_format="list",
                               filter_string=f"tags.`mlkit.dataset.train` = '{fp.digest}'")
    assert [x.info.run_id for x in found] == [r.info.run_id]


def test_log_dataset_needs_an_active_run():
    with pytest.raises(TrackingError, match=r"needs an active run.*mlkit.track.run"):
        mlkit.track.log_dataset(_frame(10), "train")


@pytest.mark.parametrize(
    "data, name, context, error, text",
    [
        ([1, 2, 3], "train", "training", DataError, "pandas or dask DataFrame, got list"),
        ("frame", "", "training", ConfigError, "dataset name must be a non-empty string"),
        ("frame", "train", "", ConfigError, "context must be a non-empty string"),
    ],
)
def test_bad_input_is_refused_without_writing(data, name, context, error, text):
    frame = _frame(10) if isinstance(data, str) else data
    with mlkit.track.run("fit", experiment="data") as r:
        with pytest.raises(error, match=text):
            mlkit.track.log_dataset(frame, name, context=context)
    got = mlflow.get_run(r.info.run_id)
    assert got.inputs.dataset_inputs == []
    assert not any(k.startswith("mlkit.dataset.") for k in got.data.tags)
    assert got.info.status == "FINISHED"
