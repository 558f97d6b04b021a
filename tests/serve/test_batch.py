"""batch_predict on a real 2-worker LocalCluster."""

from __future__ import annotations

import pytest


def _loads(client):
    from mlkit.serve import _batch

    return client.run(lambda: dict(_batch.LOADS))


def test_batch_predict_matches_the_model_and_loads_once_per_worker(demo, client, at_serve_home):
    import dask.dataframe as dd
    import pandas as pd

    import mlkit

    X = pd.concat([demo.X] * 4, ignore_index=True)
    ddf = dd.from_pandas(X, npartitions=8)
    before = _loads(client)
    preds = mlkit.serve.batch_predict(ddf, demo.alias_uri)
    assert isinstance(preds, dd.Series)
    assert preds.name == "prediction" and preds.dtype == "int64"
    assert preds.npartitions == 8 and preds.divisions == ddf.divisions
    out = preds.compute()
    assert out.index.equals(X.index)
    assert out.tolist() == demo.model.predict(X).tolist()
    # score again: the model stays loaded in each worker (8 partitions, at most 1 load each)
    assert mlkit.serve.batch_predict(ddf, demo.version_uri).sum().compute() == out.sum()
    after = _loads(client)
    loads = {w: {k: n - before[w].get(k, 0) for k, n in after[w].items()} for w in after}
    per_worker = [sum(v.values()) for v in loads.values()]
    assert sum(per_worker) >= 1 and max(per_worker) <= 1, loads


def test_batch_predict_pins_the_alias_when_called(demo, helpers, client, at_serve_home):
    """An alias moving while a job is queued does not change which version scores it."""
    import mlflow

    import mlkit

    X = demo.X.head(60)
    flipped = helpers.fit_pipeline(demo.X, flip=True)
    mlkit.track.configure()
    v2 = helpers.log_model(flipped, demo.X, "demo")
    client_ml = mlflow.MlflowClient(demo.tracking_uri)
    try:
        lazy = mlkit.serve.batch_predict(X, demo.alias_uri)  # pandas in: split over workers
        client_ml.set_registered_model_alias("demo", "champion", v2)
        assert lazy.compute().tolist() == demo.model.predict(X).tolist()
        moved = mlkit.serve.batch_predict(X, demo.alias_uri).compute()
        assert moved.tolist() == flipped.predict(X).tolist()
    finally:
        client_ml.set_registered_model_alias("demo", "champion", demo.version)


def test_batch_predict_empty_partitions_and_local_path(demo, client, mlkit_home):
    import dask.dataframe as dd

    import mlkit

    ddf = dd.from_pandas(demo.X.head(10), npartitions=2)
    empty = ddf[ddf.f0 > 1e9]  # every partition empty
    out = mlkit.serve.batch_predict(empty, demo.local_path).compute()
    assert len(out) == 0 and out.name == "prediction"
    full = mlkit.serve.batch_predict(ddf, demo.local_path).compute()
    assert full.tolist() == demo.model.predict(demo.X.head(10)).tolist()


def test_batch_predict_bad_input(demo, client, at_serve_home):
    import mlkit

    with pytest.raises(mlkit.exceptions.ServeError, match="not found in the registry"):
        mlkit.serve.batch_predict(demo.X, "models:/nope@champion")
    with pytest.raises(mlkit.exceptions.ServeError, match="dask .or pandas. DataFrame"):
        mlkit.serve.batch_predict([1, 2, 3], demo.alias_uri)


def test_batch_output_shapes():
    """Series for one output, prediction_0..k for several, as in the prediction log."""
    import numpy as np
    import pandas as pd

    from mlkit.serve._batch import _as_pandas

    idx = pd.RangeIndex(3)
    one = _as_pandas(np.array([[1.0], [2.0], [3.0]]), idx)
    assert isinstance(one, pd.Series) and one.name == "prediction"
    many = _as_pandas(np.ones((3, 2)), idx)
    assert list(many.columns) == ["prediction_0", "prediction_1"]
    named = _as_pandas(pd.DataFrame({"p": [1, 2, 3], "q": [4, 5, 6]}), idx)
    assert list(named.columns) == ["p", "q"]
