"""cuDF-backed data: read into GPU memory, and pandas-only steps fall back with a warning."""

from __future__ import annotations

import pandas as pd
import pytest

import mlkit
from mlkit.data._backend import as_pandas_backed, is_cudf_backed


def test_pandas_frames_pass_through_untouched(recwarn):
    df = pd.DataFrame({"a": [1.0, 2.0]})
    assert as_pandas_backed(df, "drift") is df and not is_cudf_backed(df)
    assert not recwarn.list


@pytest.mark.gpu
def test_cudf_frames_fall_back_to_pandas_with_a_clear_warning(cluster, tmp_path):
    pytest.importorskip("dask_cudf")
    path = str(tmp_path / "d")
    mlkit.data.synthetic(path, rows=5_000, features=4, partitions=2, seed=0, progress=False)
    gdf = mlkit.data.read(path, backend="cudf")
    assert is_cudf_backed(gdf)
    with pytest.warns(UserWarning, match="cuDF-backed"):
        scaler = mlkit.data.StandardScaler().fit(gdf[["f0", "f1"]])
    expected = mlkit.data.StandardScaler().fit(mlkit.data.read(path)[["f0", "f1"]])
    assert scaler.mean_ == pytest.approx(expected.mean_)
    with pytest.warns(UserWarning, match="drift"):
        report = mlkit.monitor.drift(gdf, gdf, progress=False)
    assert not report.drifted
