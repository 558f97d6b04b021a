"""mlkit's transformers against scikit-learn's on the same data (rtol 1e-9), fitted on dask
(several partitions, on the cluster) and on pandas; transform identical on both."""

from __future__ import annotations

import pickle

import cloudpickle
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn import compose as skc
from sklearn import impute as ski
from sklearn import pipeline as skp
from sklearn import preprocessing as skpre
from sklearn.base import clone

import mlkit
from mlkit.data import (
    ColumnTransformer,
    LogTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    Pipeline,
    SimpleImputer,
    StandardScaler,
)
from mlkit.exceptions import ConfigError, DataError

RTOL = 1e-9
# Values that are exactly 0 in exact arithmetic (an imputed mean, standardised) come out as
# +-1e-18 from both libraries, with either sign: no relative tolerance can compare those.
ATOL = 1e-12
NUM = ["f0", "f1", "f2", "f3"]
CAT = ["c0", "c1"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Synthetic data with missing values, plus a column with a huge mean and an int column."""
    mlkit.cluster.up(workers=2, threads_per_worker=1, memory_limit="2GB")
    path = mlkit.data.synthetic(
        str(tmp_path_factory.mktemp("prep") / "d"), rows=12_000, features=4, categorical=2,
        missing=0.08, partitions=5, seed=11,
    )
    ddf = mlkit.data.read(path)
    ddf = ddf.assign(big=ddf["f0"] * 3 + 1e8, count=(ddf["target"] * 7 + 3).astype("int64"))
    pdf = ddf.compute()
    return ddf, pdf


def _objects(pdf: pd.DataFrame) -> pd.DataFrame:
    """Text columns as sklearn takes them: object arrays with NaN for missing."""
    out = pdf.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].astype(object).where(out[col].notna(), np.nan)
    return out


def _assert_same(mine, theirs, columns=None, atol=ATOL):
    if hasattr(mine, "compute"):
        mine = mine.compute()
    assert isinstance(mine, pd.DataFrame)
    if columns is not None:
        assert list(mine.columns) == list(columns)
    np.testing.assert_allclose(mine.to_numpy(dtype=float), np.asarray(theirs, dtype=float),
                               rtol=RTOL, atol=atol, equal_nan=True)


def _both(est, ddf, pdf):
    """Fit a clone on dask and another on pandas; both must transform alike."""
    on_dask = clone(est).fit(ddf)
    on_pandas = clone(est).fit(pdf)
    lazy = on_dask.transform(ddf)
    assert isinstance(lazy, dd.DataFrame)
    eager = on_pandas.transform(pdf)
    pd.testing.assert_frame_equal(lazy.compute(), eager, rtol=RTOL, check_exact=False)
    return on_dask


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_imputer_numeric_matches_sklearn(frames, strategy):
    ddf, pdf = frames
    cols = [*NUM, "big", "count"]
    mine = _both(SimpleImputer(strategy=strategy), ddf[cols], pdf[cols])
    theirs = ski.SimpleImputer(strategy=strategy).fit(pdf[cols])
    np.testing.assert_allclose(mine.statistics_.astype(float), theirs.statistics_.astype(float),
                               rtol=RTOL)
    _assert_same(mine.transform(ddf[cols]), theirs.transform(pdf[cols]), cols)
    assert mine.fit_passes_ == {"mean": 1, "median": 2, "most_frequent": 1, "constant": 0}[strategy]


@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_imputer_text_matches_sklearn(frames, strategy):
    ddf, pdf = frames
    mine = _both(SimpleImputer(strategy=strategy), ddf[CAT], pdf[CAT])
    theirs = ski.SimpleImputer(strategy=strategy).fit(_objects(pdf[CAT]))
    assert list(mine.statistics_) == list(theirs.statistics_)
    out = mine.transform(ddf[CAT]).compute()
    assert out.isna().sum().sum() == 0
    assert (out.to_numpy(dtype=object) == theirs.transform(_objects(pdf[CAT]))).all()


def test_median_is_exact_through_histogram_refinement(frames, monkeypatch):
    """A tiny window forces the histogram passes; the result must equal numpy's median, with
    ties (int column), an even count and a heavy tail."""
    from mlkit.data._prep import median

    ddf, pdf = frames
    tail = ddf.assign(tail=ddf["f1"] ** 9, ties=(ddf["f2"] * 3).round())[["tail", "ties", "f0"]]
    monkeypatch.setattr(median, "_WINDOW", 40)
    imp = SimpleImputer(strategy="median").fit(tail)
    assert imp.fit_passes_ >= 3
    expected = np.nanmedian(tail.compute().to_numpy(), axis=0)
    assert imp.statistics_.tolist() == expected.tolist()  # exact, not approximately
    even = pd.DataFrame({"x": [4.0, 1.0, np.nan, 3.0, 2.0, 10.0]})  # 5 values; then 4
    assert SimpleImputer(strategy="median").fit(even).statistics_[0] == 3.0
    assert SimpleImputer(strategy="median").fit(even.iloc[:5]).statistics_[0] == 2.5


def test_standard_scaler_matches_sklearn_also_with_a_huge_mean(frames):
    ddf, pdf = frames
    cols = [*NUM, "big", "count"]
    mine = _both(StandardScaler(), ddf[cols], pdf[cols])
    theirs = skpre.StandardScaler().fit(pdf[cols])
    np.testing.assert_allclose(mine.mean_, theirs.mean_, rtol=RTOL)
    np.testing.assert_allclose(mine.var_, theirs.var_, rtol=RTOL)
    np.testing.assert_allclose(mine.scale_, theirs.scale_, rtol=RTOL)
    assert mine.n_samples_seen_.tolist() == list(theirs.n_samples_seen_)
    ours, sk = mine.transform(ddf[cols]).compute(), theirs.transform(pdf[cols])
    _assert_same(ours.drop(columns=["big"]), np.delete(sk, 4, axis=1))
    # 'big' (~1e8) is stored to +-1.5e-8; one ulp of difference in the two means is all the
    # two libraries may disagree by, so compare within that representation error.
    _assert_same(ours[["big"]], sk[:, [4]], atol=2 * np.spacing(1e8) / mine.scale_[4])
    assert mine.fit_passes_ == 1
    const = pd.DataFrame({"k": [5.0] * 10, "x": np.arange(10.0)})
    np.testing.assert_allclose(
        StandardScaler().fit(const).scale_, skpre.StandardScaler().fit(const).scale_
    )


@pytest.mark.parametrize("kw", [{}, {"feature_range": (-2, 3), "clip": True}])
def test_minmax_scaler_matches_sklearn(frames, kw):
    ddf, pdf = frames
    cols = [*NUM, "count"]
    mine = _both(MinMaxScaler(**kw), ddf[cols], pdf[cols])
    theirs = skpre.MinMaxScaler(**kw).fit(pdf[cols])
    for attr in ("data_min_", "data_max_", "scale_", "min_"):
        np.testing.assert_allclose(getattr(mine, attr), getattr(theirs, attr), rtol=RTOL)
    _assert_same(mine.transform(ddf[cols]), theirs.transform(pdf[cols]), cols)
    new = pdf[cols].head(50) * 3  # out of range: clipped only with clip=True
    _assert_same(mine.transform(new), theirs.transform(new))


def test_one_hot_matches_sklearn_and_ignores_unseen(frames):
    ddf, pdf = frames
    mine = _both(OneHotEncoder(), ddf[CAT], pdf[CAT])
    theirs = skpre.OneHotEncoder(sparse_output=False, handle_unknown="ignore").fit(
        _objects(pdf[CAT]))
    assert list(mine.get_feature_names_out()) == list(theirs.get_feature_names_out())
    for a, b in zip(mine.categories_, theirs.categories_, strict=True):
        assert [str(v) for v in a] == [str(v) for v in b if v == v]  # sklearn lists nan last
    _assert_same(mine.transform(ddf[CAT]), theirs.transform(_objects(pdf[CAT])))
    unseen = pd.DataFrame({"c0": ["zzz", "a"], "c1": ["b", "new"]})
    _assert_same(mine.transform(unseen), theirs.transform(unseen))
    row = mine.transform(unseen).iloc[0]
    assert row.filter(like="c0_").sum() == 0 and row["c1_b"] == 1
    strict = OneHotEncoder(handle_unknown="error").fit(pdf[CAT])
    with pytest.raises(DataError, match=r"'c0' has categories not seen during fit: \['zzz'\]"):
        strict.transform(unseen)


def test_ordinal_matches_sklearn_with_unseen_and_missing(frames):
    ddf, pdf = frames
    mine = _both(OrdinalEncoder(), ddf[CAT], pdf[CAT])
    theirs = skpre.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(
        _objects(pdf[CAT]))
    _assert_same(mine.transform(ddf[CAT]), theirs.transform(_objects(pdf[CAT])))
    unseen = pd.DataFrame({"c0": ["zzz", None], "c1": ["b", "e"]}, dtype=object)
    _assert_same(mine.transform(unseen), theirs.transform(_objects(unseen)))
    ints = pd.DataFrame({"k": [3, 1, 2, 3, 1]})
    _assert_same(OrdinalEncoder().fit(ints).transform(ints), [[2], [0], [1], [2], [0]])


def test_log_transformer_matches_function_transformer(frames):
    ddf, pdf = frames
    cols = ["count"]
    mine = _both(LogTransformer(), ddf[cols], pdf[cols])
    theirs = skpre.FunctionTransformer(np.log1p)
    _assert_same(mine.transform(ddf[cols]), theirs.fit_transform(pdf[cols]))
    shifted = LogTransformer(offset=10).fit(pdf[["f0"]])
    _assert_same(shifted.transform(pdf[["f0"]]), np.log(pdf[["f0"]] + 10))
    with pytest.raises(DataError, match=r"column 'f0' has values as low as -\d.*x > -1"):
        LogTransformer().fit(ddf[["f0"]])


def test_column_transformer_matches_sklearn_in_one_pass(frames):
    ddf, pdf = frames
    mine = ColumnTransformer(
        [("scale", StandardScaler(), ["f0", "f1"]), ("mm", MinMaxScaler(), ["f2"]),
         ("cat", OneHotEncoder(), ["c0"]), ("log", LogTransformer(), "count")],
        remainder="passthrough",
    )
    fitted = _both(mine, ddf.drop(columns=["c1"]), pdf.drop(columns=["c1"]))
    assert fitted.fit_passes_ == 1  # four transformers, one read of the data
    theirs = skc.ColumnTransformer(
        [("scale", skpre.StandardScaler(), ["f0", "f1"]), ("mm", skpre.MinMaxScaler(), ["f2"]),
         ("cat", skpre.OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ["c0"]),
         ("log", skpre.FunctionTransformer(np.log1p, feature_names_out="one-to-one"), ["count"])],
        remainder="passthrough", verbose_feature_names_out=False,
    ).fit(_objects(pdf.drop(columns=["c1"])))
    assert list(fitted.get_feature_names_out()) == list(theirs.get_feature_names_out())
    _assert_same(fitted.transform(ddf.drop(columns=["c1"])),
                 theirs.transform(_objects(pdf.drop(columns=["c1"]))))


def test_pipelines_inside_composer_match_sklearn_and_advance_together(frames):
    ddf, pdf = frames
    prep = mlkit.data.make_preprocessor(ddf, exclude=["target", "big", "count"])
    fitted = _both(prep, ddf, pdf)
    assert fitted.fit_passes_ == 1  # impute -> scale and impute -> one-hot: one read of the data
    theirs = skc.ColumnTransformer(
        [("num", skp.Pipeline([("i", ski.SimpleImputer()), ("s", skpre.StandardScaler())]), NUM),
         ("cat", skp.Pipeline([("i", ski.SimpleImputer(strategy="most_frequent")),
                               ("e", skpre.OneHotEncoder(sparse_output=False,
                                                         handle_unknown="ignore"))]), CAT)],
        verbose_feature_names_out=False,
    ).fit(_objects(pdf[NUM + CAT]))
    assert list(fitted.get_feature_names_out()) == list(theirs.get_feature_names_out())
    _assert_same(fitted.transform(ddf), theirs.transform(_objects(pdf[NUM + CAT])))


@pytest.mark.parametrize(
    "strategy, step, passes",
    [
        ("mean", "minmax", 1), ("constant", "standard", 1), ("median", "standard", 3),
        ("most_frequent", "log", 1), ("most_frequent", "ordinal", 1),
        ("constant", "onehot", 1),
    ],
)
def test_imputer_then_step_in_one_pass_equals_sklearn_pipeline(frames, strategy, step, passes):
    """A one-pass imputer and the step after it fit together on the raw data; the result must
    be what fitting the step on the imputed data gives (sklearn's Pipeline)."""
    ddf, pdf = frames
    mine_step, their_step, cols = {
        "minmax": (MinMaxScaler(), skpre.MinMaxScaler(), NUM),
        "standard": (StandardScaler(), skpre.StandardScaler(), [*NUM, "count"]),
        "log": (LogTransformer(), skpre.FunctionTransformer(np.log1p), ["f1"]),
        "ordinal": (OrdinalEncoder(), skpre.OrdinalEncoder(), CAT),
        "onehot": (OneHotEncoder(), skpre.OneHotEncoder(sparse_output=False), CAT),
    }[step]
    fill = {"fill_value": 7.5} if strategy == "constant" and step != "onehot" else {}
    data = ddf[cols].assign(f1=ddf["f1"].abs()) if step == "log" else ddf[cols]
    mine = _both(Pipeline([("i", SimpleImputer(strategy=strategy, **fill)), ("s", mine_step)]),
                 data, data.compute())
    assert mine.fit_passes_ == passes
    theirs = skp.Pipeline([("i", ski.SimpleImputer(strategy=strategy, **fill)),
                           ("s", their_step)]).fit(_objects(data.compute()))
    _assert_same(mine.transform(data), theirs.transform(_objects(data.compute())))


def test_fitted_objects_are_small_and_pickle(frames):
    ddf, pdf = frames
    prep = mlkit.data.make_preprocessor(ddf, exclude=["target"]).fit(ddf)
    for dumps in (pickle.dumps, cloudpickle.dumps):
        blob = dumps(prep)
        assert len(blob) < 20_000
        again = pickle.loads(blob)
        pd.testing.assert_frame_equal(again.transform(pdf.head(100)), prep.transform(pdf.head(100)))
    # a served model sees single rows with only the raw columns, in JSON-ish types
    row = pd.DataFrame([{**{c: float(pdf[c].iloc[0]) for c in NUM}, "c0": "a", "c1": None,
                         "big": 1e8, "count": 3}])
    out = prep.transform(row)
    assert out.shape == (1, len(prep.get_feature_names_out())) and out.notna().all().all()


def test_sklearn_api_conventions(frames):
    _, pdf = frames
    sc = StandardScaler(with_mean=False)
    assert sc.get_params() == {"with_mean": False, "with_std": True}
    assert clone(sc).with_mean is False
    pipe = skp.make_pipeline(SimpleImputer(), StandardScaler())  # usable inside sklearn too
    out = pipe.fit_transform(pdf[NUM])
    assert isinstance(out, pd.DataFrame) and out.isna().sum().sum() == 0
    with pytest.raises(Exception, match="not fitted"):
        StandardScaler().transform(pdf[NUM])


def test_bad_input_errors_name_column_and_value(frames):
    ddf, pdf = frames
    with pytest.raises(DataError, match=r"StandardScaler: column 'c0' is not numeric"):
        StandardScaler().fit(ddf[["f0", "c0"]])
    mixed = pd.DataFrame({"m": [1, "two", 3.0, None]}, dtype=object)
    with pytest.raises(DataError, match=r"column 'm' is not numeric \(dtype object: mixed"):
        SimpleImputer().fit(mixed)
    with pytest.raises(DataError, match=r"OneHotEncoder: column 'm' has mixed types \(float, int"):
        OneHotEncoder().fit(mixed)
    fitted = StandardScaler().fit(pdf[["f0", "f1"]])
    with pytest.raises(DataError, match=r"lacks column\(s\) \['f1'\]"):
        fitted.transform(pdf[["f0"]])
    with pytest.raises(DataError, match=r"column 'f1' must be numeric but holds \['oops'\]"):
        fitted.transform(pd.DataFrame({"f0": [1.0], "f1": ["oops"]}))
    with pytest.raises(DataError, match=r"branch 'x' names column\(s\) \['nope'\]"):
        ColumnTransformer([("x", StandardScaler(), ["f0", "nope"])]).fit(ddf)
    with pytest.raises(DataError, match=r"empty dataset \(0 rows\)"):
        StandardScaler().fit(ddf[ddf["f0"] > 1e9][["f0"]])
    with pytest.raises(DataError, match=r"column\(s\) \['e'\] have no values"):
        SimpleImputer().fit(pd.DataFrame({"e": [np.nan, np.nan], "x": [1.0, 2.0]}))
    with pytest.raises(ConfigError, match="strategy must be one of"):
        SimpleImputer(strategy="mode").fit(pdf[NUM])
    with pytest.raises(DataError, match="infinite"):
        StandardScaler().fit(pd.DataFrame({"x": [1.0, np.inf]}))
    with pytest.raises(DataError, match="pandas or dask DataFrame"):
        StandardScaler().fit(np.zeros((3, 2)))
