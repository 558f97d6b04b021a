"""explain(): xgboost's native SHAP contributions sum to the margin, on pandas and the cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

import mlkit
from mlkit.exceptions import ConfigError, DataError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 4)), columns=["a", "b", "c", "d"])
    y = (2 * X.a - X.b + 0.5 * rng.normal(size=2000) > 0).astype(int)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(X, y), 20)
    return X, y, booster


def _margin(booster, X, **kw):
    return booster.predict(xgb.DMatrix(X), output_margin=True, **kw)


def test_contributions_sum_to_the_margin_in_memory(data):
    X, _, booster = data
    ex = mlkit.monitor.explain(booster, X)
    assert list(ex.values.columns) == ["a", "b", "c", "d", "bias"]
    np.testing.assert_allclose(ex.values.sum(axis=1), _margin(booster, X), atol=1e-4)
    assert ex.importance.index[:2].tolist() == ["a", "b"]  # the features the target uses
    assert ex.importance.iloc[-1] < 0.1 * ex.importance.iloc[0]
    expected = ex.values.drop(columns="bias").abs().mean().sort_values(ascending=False)
    pd.testing.assert_series_equal(ex.importance, expected.astype(float), check_names=False)


def test_contributions_on_the_cluster(data, cluster):
    import dask.dataframe as dd

    X, _, booster = data
    ddf = dd.from_pandas(X, npartitions=4)
    ex = mlkit.monitor.explain(booster, ddf)
    assert isinstance(ex.values, dd.DataFrame)  # stays on the cluster until asked for
    values = ex.values.compute()
    np.testing.assert_allclose(values.sum(axis=1), _margin(booster, X), atol=1e-4)
    local = mlkit.monitor.explain(booster, X)
    np.testing.assert_allclose(ex.importance.to_numpy(), local.importance.to_numpy(), rtol=1e-5)


def test_multiclass_contributions_sum_per_class(data, cluster):
    import dask.dataframe as dd

    X, _, _ = data
    y3 = np.digitize(X.a, [-0.5, 0.5])
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 2},
                        xgb.DMatrix(X, y3), 8)
    for frame in (X, dd.from_pandas(X, npartitions=3)):
        ex = mlkit.monitor.explain(booster, frame)
        values = ex.values.compute() if hasattr(ex.values, "compute") else ex.values
        assert ex.groups == 3 and values.shape == (2000, 15)
        sums = values.to_numpy().reshape(2000, 3, 5).sum(axis=2)
        np.testing.assert_allclose(sums, _margin(booster, X), atol=1e-4)
        assert ex.importance.index[0] == "a"


def test_accepts_sklearn_models_and_mlflow_uris(data):
    import mlflow

    X, y, booster = data
    clf = xgb.XGBClassifier(n_estimators=10, max_depth=2).fit(X, y)
    ex = mlkit.monitor.explain(clf, X)
    np.testing.assert_allclose(ex.values.sum(axis=1), clf.predict(X, output_margin=True),
                               atol=1e-4)
    with mlkit.track.run("model"):
        info = mlflow.xgboost.log_model(booster, name="model", pip_requirements=["xgboost"])
    ex = mlkit.monitor.explain(info.model_uri, X)
    np.testing.assert_allclose(ex.values.sum(axis=1), _margin(booster, X), atol=1e-4)


def test_mlkit_training_result_and_its_logged_pyfunc(cluster):
    import dask.dataframe as dd

    rng = np.random.default_rng(1)
    raw = pd.DataFrame({"x0": rng.normal(size=3000), "x1": rng.normal(size=3000),
                        "x2": rng.normal(size=3000)})
    raw["target"] = (raw.x0 - raw.x2 > 0).astype(int)
    train = dd.from_pandas(raw, npartitions=2)
    result = mlkit.train.xgboost(train, "target", params={"objective": "binary:logistic"},
                                 rounds=10, progress=False)
    X = raw.drop(columns="target")
    ex = mlkit.monitor.explain(result, X)
    margin = result.booster.predict(xgb.DMatrix(X), output_margin=True)
    np.testing.assert_allclose(ex.values.sum(axis=1), margin, atol=1e-4)
    uri = result.log_model()
    from_uri = mlkit.monitor.explain(uri, X)  # raw columns in, as the served model takes them
    np.testing.assert_allclose(from_uri.values.sum(axis=1), margin, atol=1e-4)
    assert set(from_uri.importance.index[:2]) == {"x0", "x2"}


def test_unsupported_models_and_bad_data(data, tmp_path):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    X, y, booster = data
    with pytest.raises(ConfigError, match="LogisticRegression: pass an xgboost.Booster"):
        mlkit.monitor.explain(LogisticRegression().fit(X, y), X)
    with mlkit.track.run("sk"):
        info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                                        pip_requirements=["scikit-learn"])
    with pytest.raises(ConfigError, match="is not an xgboost model"):
        mlkit.monitor.explain(info.model_uri, X)
    with pytest.raises(DataError, match=r"lacks feature\(s\) \['d'\]"):
        mlkit.monitor.explain(booster, X.drop(columns="d"))
    with pytest.raises(DataError, match="pandas or dask DataFrame"):
        mlkit.monitor.explain(booster, X.to_numpy())


def test_plot_and_notebook_view(data):
    X, _, booster = data
    ex = mlkit.monitor.explain(booster, X)
    fig = ex.plot(top=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ex.importance.index[:3][::-1].tolist()
    html = ex._repr_html_()
    assert "data:image/png;base64," in html and "<td>a</td>" in html
