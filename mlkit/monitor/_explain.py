"""``explain``: per-feature attributions of xgboost predictions (SHAP values).

xgboost computes exact TreeSHAP contributions natively (``pred_contribs=True``), on the cluster
with ``xgboost.dask.predict`` for dask data, so no SHAP package is needed. Each row's
contributions plus the bias sum to the model's raw (margin) prediction for that row.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from typing import Any

from mlkit._imports import require
from mlkit.exceptions import ConfigError, DataError, TrackingError
from mlkit.monitor._scan import is_dask

# Engines are optional extras: require() names the extra to install when one is missing.
np = require("numpy")

__all__ = ["explain", "Explanation", "BIAS"]

BIAS = "bias"


@dataclass
class _Model:
    booster: Any
    preprocess: Any = None
    columns: list[str] | None = None
    iteration_range: tuple[int, int] | None = None


def _unsupported(model: Any) -> ConfigError:
    return ConfigError(
        f"explain() works with xgboost models, but got {type(model).__module__}."
        f"{type(model).__qualname__}: pass an xgboost.Booster, an xgboost scikit-learn model, "
        "an mlkit.train.xgboost result, or the MLflow URI of such a model"
    )


def _resolve(model: Any) -> _Model:
    xgb = require("xgboost")
    if isinstance(model, xgb.Booster):
        return _Model(model)
    if isinstance(model, xgb.XGBModel):
        return _Model(model.get_booster())
    if isinstance(model, str):
        return _from_mlflow(model)
    booster = getattr(model, "booster", None)
    if isinstance(booster, xgb.Booster):
        # An mlkit.train.xgboost result, or the pyfunc it logs (BoosterPipeline).
        rng = getattr(model, "iteration_range", None)
        if rng is None and getattr(model, "early_stopped", False):
            rng = (0, int(model.best_iteration) + 1)
        columns = getattr(model, "columns", None)
        return _Model(booster, getattr(model, "preprocess", None),
                      list(columns) if columns else None, tuple(rng) if rng else None)
    raise _unsupported(model)


def _from_mlflow(uri: str) -> _Model:
    mlflow = require("mlflow")
    from mlkit import track

    track.configure()
    try:
        info = mlflow.models.get_model_info(uri)
    except Exception as exc:
        raise TrackingError(f"cannot load MLflow model {uri!r}: {exc}") from None
    if "xgboost" in info.flavors:
        return _resolve(mlflow.xgboost.load_model(uri))
    if "python_function" in info.flavors:
        loaded = mlflow.pyfunc.load_model(uri)
        try:
            inner = loaded.unwrap_python_model()
        except Exception:  # not a Python-class pyfunc (sklearn, torch, ...)
            inner = None
        if inner is not None and getattr(inner, "booster", None) is not None:
            return _resolve(inner)
    raise ConfigError(
        f"MLflow model {uri!r} (flavors: {sorted(info.flavors)}) is not an xgboost model; "
        "explain() works with xgboost models (native SHAP contributions)"
    )


def _transform_pandas(frame: Any, preprocess: Any) -> Any:
    """``preprocess.transform`` as a DataFrame named by ``get_feature_names_out``."""
    import pandas as pd

    out = preprocess.transform(frame)
    if isinstance(out, pd.DataFrame):
        return out
    if hasattr(out, "toarray"):  # scipy sparse, e.g. one-hot encoders
        out = out.toarray()
    out = np.asarray(out)
    out = out.reshape(len(out), -1)
    try:
        names = [str(n) for n in preprocess.get_feature_names_out()]
    except Exception:
        names = [f"x{i}" for i in range(out.shape[1])]
    return pd.DataFrame(out, index=frame.index, columns=names)


def _inputs(m: _Model, df: Any) -> Any:
    columns = {str(c) for c in df.columns}
    if m.columns:
        missing = [c for c in m.columns if c not in columns]
        if missing:
            raise DataError(f"the data lacks the model's input column(s) {missing}")
        df = df[m.columns]
    if m.preprocess is not None:
        if is_dask(df):
            meta = _transform_pandas(df._meta_nonempty, m.preprocess).iloc[:0]
            df = df.map_partitions(_transform_pandas, m.preprocess, meta=meta)
        else:
            df = _transform_pandas(df, m.preprocess)
    names = m.booster.feature_names
    if names:
        have = {str(c) for c in df.columns}
        missing = [c for c in names if c not in have]
        if missing:
            raise DataError(
                f"the data lacks feature(s) {missing} the booster was trained on "
                f"(it has {sorted(have)})"
            )
        df = df[list(names)]
    return df


def _groups(booster: Any) -> int:
    """Number of model outputs (classes of a multi-class model, else 1)."""
    cfg = json.loads(booster.save_config())
    mp = cfg["learner"]["learner_model_param"]
    return max(1, int(float(mp.get("num_class", 0))), int(float(mp.get("num_target", 1))))


def _columns(features: list[str], groups: int) -> list[str]:
    names = [*features, BIAS]
    if groups == 1:
        return names
    return [f"{n}[{g}]" for g in range(groups) for n in names]


class Explanation:
    """SHAP contributions of a model's predictions, and the global importance they imply.

    Attributes
    ----------
    values : pandas or dask DataFrame
        One column per feature plus ``bias`` (for multi-class models ``feature[k]`` per class
        ``k``); each row sums (per class) to the margin prediction.
    importance : pandas.Series
        Mean absolute contribution per feature, largest first (summed over classes).
    features : list of str
    groups : int
        Model outputs (classes of a multi-class model, else 1).

    Examples
    --------
    >>> ex = mlkit.monitor.explain(result, valid_ddf)   # doctest: +SKIP
    >>> ex.importance.head()                           # doctest: +SKIP
    >>> ex.plot()                                      # doctest: +SKIP
    """

    def __init__(self, values: Any, importance: Any, features: list[str], groups: int) -> None:
        self.values = values
        self.importance = importance
        self.features = features
        self.groups = groups

    def plot(self, top: int = 20, ax: Any = None) -> Any:
        """Horizontal bar chart of the global importance (mean |SHAP|); returns the Figure.

        Parameters
        ----------
        top : int
            Features shown (largest first).
        ax : matplotlib Axes, optional
            Draw into these axes instead of a new Figure.
        """
        require("matplotlib")
        imp = self.importance.head(top)[::-1]
        if ax is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(5.0, 0.3 * len(imp) + 0.9), dpi=80)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot(1, 1, 1)
        else:
            fig = ax.figure
        ax.barh([str(i) for i in imp.index], imp.to_numpy(), color="#1f77b4")
        ax.set_xlabel("mean |SHAP value| (margin units)")
        ax.set_title("global feature importance")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{v:.4g}</td></tr>"
            for k, v in self.importance.head(20).items()
        )
        img = ""
        from mlkit._imports import available

        if available("matplotlib"):
            buf = io.BytesIO()
            self.plot().savefig(buf, format="png", metadata={"Software": None})
            img = ('<img alt="global importance" src="data:image/png;base64,'
                   f'{base64.b64encode(buf.getvalue()).decode("ascii")}"/>')
        return (
            "<div><b>SHAP explanation</b> "
            f"({len(self.features)} features, {self.groups} output(s))"
            "<div style='display:flex;gap:12px;align-items:flex-start'>"
            "<table><tr><th>feature</th><th>mean |SHAP|</th></tr>"
            f"{rows}</table>{img}</div></div>"
        )

    def __repr__(self) -> str:
        top = ", ".join(f"{k}={v:.3g}" for k, v in self.importance.head(5).items())
        return f"<Explanation of {len(self.features)} features; top: {top}>"


def explain(model: Any, df: Any, *, client: Any = None) -> Explanation:
    """Per-feature attributions (SHAP values) of an xgboost model's predictions on ``df``.

    Contributions are xgboost's exact TreeSHAP values (``pred_contribs=True``), computed on the
    cluster with ``xgboost.dask.predict`` when ``df`` is a dask DataFrame; the global importance
    (mean |SHAP| per feature) is reduced there too, so only one number per feature comes back.

    Parameters
    ----------
    model : xgboost.Booster, xgboost scikit-learn model, mlkit.train.xgboost result or str
        A string is an MLflow model URI (``runs:/...``, ``models:/...``) of an xgboost-flavor
        model or of the pyfunc ``mlkit.train.xgboost(...).log_model()`` writes (its bundled
        preprocessing is applied to the raw columns first).
    df : pandas.DataFrame or dask.dataframe.DataFrame
        Rows to explain (raw columns for a model with bundled preprocessing).
    client : distributed.Client, optional
        Defaults to the mlkit cluster's client (dask input only).

    Returns
    -------
    Explanation
        ``values`` (contributions, lazy for dask input), ``importance``, ``plot()``.

    Examples
    --------
    >>> ex = mlkit.monitor.explain(result.booster, X_valid)          # doctest: +SKIP
    >>> ex.values.sum(axis=1)   # == booster.predict(..., output_margin=True)   # doctest: +SKIP
    >>> ex.plot()                                                     # doctest: +SKIP
    """
    if not is_dask(df) and type(df).__name__ != "DataFrame":
        raise DataError(f"explain() needs a pandas or dask DataFrame, but got {type(df).__name__}")
    m = _resolve(model)
    X = _inputs(m, df)
    features = [str(c) for c in X.columns]
    groups = _groups(m.booster)
    cols = _columns(features, groups)
    kwargs: dict[str, Any] = {"pred_contribs": True}
    if m.iteration_range:
        kwargs["iteration_range"] = m.iteration_range
    import pandas as pd

    if is_dask(X):
        if client is None:
            from mlkit.cluster import get_client

            client = get_client()
        values = _dask_contribs(client, m.booster, X, groups, cols, kwargs)
        mean_abs = values.abs().mean().compute()
    else:
        xgb = require("xgboost")
        if len(X) == 0:
            raise DataError("explain() got an empty DataFrame: nothing to explain")
        out = m.booster.predict(xgb.DMatrix(X, enable_categorical=True), **kwargs)
        values = pd.DataFrame(out.reshape(len(X), -1), index=X.index, columns=cols)
        mean_abs = values.abs().mean()
    per = np.asarray(mean_abs, dtype=float).reshape(groups, len(features) + 1)[:, :-1]
    importance = pd.Series(per.sum(axis=0), index=features, name="mean_abs_shap")
    importance = importance.sort_values(ascending=False, kind="stable")
    return Explanation(values, importance, features, groups)


def _dask_contribs(
    client: Any, booster: Any, X: Any, groups: int, cols: list[str], kwargs: dict[str, Any]
) -> Any:
    dxgb = require("xgboost.dask")
    if groups == 1:
        out = dxgb.predict(client, booster, X, **kwargs)
        out.columns = cols
        return out
    # xgboost.dask returns a DataFrame only for 2-D output; multi-class contributions are 3-D,
    # so predict per partition and flatten (class, feature) into columns.
    import pandas as pd

    xgb = require("xgboost")
    import dask

    booster_d = dask.delayed(booster, pure=True)  # one graph key, not a copy per task

    def contribs(part: pd.DataFrame, bst: Any) -> pd.DataFrame:
        arr = bst.predict(xgb.DMatrix(part, enable_categorical=True), **kwargs)
        return pd.DataFrame(arr.reshape(len(part), -1), index=part.index, columns=cols)

    meta = pd.DataFrame({c: pd.Series(dtype="float32") for c in cols})
    return X.map_partitions(contribs, booster_d, meta=meta)
