"""Batch scoring of a dask DataFrame on the cluster, the model loaded once per worker process.

Each partition is scored by ``PyFuncModel.predict`` inside the worker; the model is loaded the
first time a worker meets it and kept in a per-process cache keyed by its location, so a
1,000-partition job loads it once per worker, not 1,000 times.

Workers never resolve ``models:/`` or ``runs:/`` themselves: their environment may point at
another tracking store (they were started before the client changed ``MLKIT_HOME`` or
``MLFLOW_TRACKING_URI``), and MLflow's registry resolution reads the process-global tracking URI
whatever is passed to it. The client resolves the reference to the model's storage location
(``file:///...``, ``s3://...``) and sends that, with the tracking URI for stores that need one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from mlkit.exceptions import ServeError

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["batch_predict"]

_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()
#: How many times this process loaded each model (tests read it to check "once per worker").
LOADS: dict[str, int] = {}


def _load(location: str, tracking_uri: str) -> Any:
    key = (location, tracking_uri)
    model = _CACHE.get(key)
    if model is not None:
        return model
    with _LOCK:  # threads of one worker share one copy
        model = _CACHE.get(key)
        if model is None:
            import mlflow

            # a local folder (file:// or a path) is used in place, other stores are downloaded
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=location, tracking_uri=tracking_uri
            )
            model = mlflow.pyfunc.load_model(local)
            _CACHE[key] = model
            LOADS[location] = LOADS.get(location, 0) + 1
    return model


def _as_pandas(predictions: Any, index: Any) -> Any:
    """Predictions as a Series named ``prediction`` or a DataFrame (multi-output)."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.Series):
        return pd.Series(predictions.to_numpy(), index=index, name="prediction")
    if isinstance(predictions, pd.DataFrame):
        if predictions.shape[1] == 1:
            return pd.Series(predictions.iloc[:, 0].to_numpy(), index=index, name="prediction")
        out = predictions.copy()
        out.index = index
        return out
    arr = np.asarray(predictions)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        return pd.Series(arr, index=index, name="prediction")
    if arr.ndim == 2:
        cols = [f"prediction_{i}" for i in range(arr.shape[1])]
        return pd.DataFrame(arr, index=index, columns=cols)
    raise ServeError(f"batch_predict needs 1-D or 2-D predictions, the model returned {arr.shape}")


def _predict_partition(part: Any, location: str, tracking_uri: str) -> Any:
    model = _load(location, tracking_uri)
    if len(part) == 0:
        return _as_pandas(_empty_output(model.metadata.get_output_schema()), part.index)
    return _as_pandas(model.predict(part), part.index)


def _empty_output(schema: Any) -> Any:
    """Zero-length predictions of the kind the output signature describes."""
    import numpy as np
    import pandas as pd

    if schema is None:
        return np.empty(0)
    if schema.is_tensor_spec():
        spec = schema.inputs[0]
        shape = (0, *[d for d in spec.shape[1:] if d != -1])
        return np.empty(shape, dtype=spec.type)
    types = schema.pandas_types()
    names = schema.input_names() if schema.has_input_names() else range(len(types))
    return pd.DataFrame({n: pd.Series([], dtype=t) for n, t in zip(names, types, strict=True)})


def _output_schema(ref: Any, tracking_uri: str) -> Any:
    """The model's output signature, read from its MLmodel file alone (no model load here)."""
    import tempfile
    from pathlib import Path

    import mlflow
    from mlflow.models import Model

    from mlkit.serve._models import local_folder

    folder = local_folder(ref)
    if folder is not None:
        return Model.load(str(Path(folder) / "MLmodel")).get_output_schema()
    with tempfile.TemporaryDirectory(prefix="mlkit-mlmodel-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=ref.location.rstrip("/") + "/MLmodel", dst_path=tmp,
            tracking_uri=tracking_uri,
        )
        return Model.load(path).get_output_schema()


def _meta(ref: Any, tracking_uri: str, df: Any) -> Any:
    """The output's meta: from the output signature, else by scoring a few real rows."""
    schema = _output_schema(ref, tracking_uri)
    if schema is not None:
        return _as_pandas(_empty_output(schema), df._meta.index)
    sample = df.head(5, npartitions=-1, compute=True)
    out = _as_pandas(_load(ref.location, tracking_uri).predict(sample), sample.index)
    return out.iloc[:0]


def batch_predict(
    df: Any,
    model: Any,
    *,
    meta: Any = None,
    client: Any = None,
) -> dd.Series | dd.DataFrame:
    """Score a dask DataFrame on the cluster with an MLflow model (loaded once per worker).

    Parameters
    ----------
    df : dask.dataframe.DataFrame (or pandas.DataFrame)
        Raw feature columns, as the model's signature names them. A pandas frame is split into
        one partition per worker.
    model : str or pathlib.Path
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH`` or a local
        folder. An alias is pinned to the version it points at when you call this, so every
        partition is scored by the same version.
    meta : optional
        dask meta of the result; by default taken from the model's output signature (or by
        scoring the first rows when the model has none).
    client : distributed.Client, optional
        Defaults to the active mlkit cluster.

    Returns
    -------
    dask Series named ``prediction`` (same divisions and index as ``df``), or a dask DataFrame
    ``prediction_0..k`` for multi-output models. Lazy: call ``.compute()`` or write it out.

    Examples
    --------
    >>> preds = mlkit.serve.batch_predict(ddf, "models:/iris@champion")   # doctest: +SKIP
    >>> preds.compute().head()                                          # doctest: +SKIP
    """
    import dask.dataframe as dd
    import pandas as pd

    from mlkit import track
    from mlkit.cluster import get_client
    from mlkit.serve._models import resolve

    client = client if client is not None else get_client()
    if isinstance(df, pd.DataFrame):
        nworkers = max(1, len(client.scheduler_info().get("workers", {})))
        df = dd.from_pandas(df, npartitions=min(nworkers, max(1, len(df))))
    if not isinstance(df, dd.DataFrame):
        raise ServeError(
            f"batch_predict expects a dask (or pandas) DataFrame of raw features, got {type(df)!r}"
        )
    tracking_uri = track.tracking_uri()
    ref = resolve(model, tracking_uri)
    _check_workers_reach(ref.location)
    if meta is None:
        meta = _meta(ref, tracking_uri, df)
    return df.map_partitions(
        _predict_partition, ref.location, tracking_uri, meta=meta, enforce_metadata=False,
        align_dataframes=False,
    )


def _check_workers_reach(location: str) -> None:
    """The workers load the model themselves: its artifacts must be somewhere they reach."""
    from mlkit._store import is_client_local
    from mlkit.cluster._preflight import require_reachable

    if is_client_local(location):
        require_reachable(
            location, "the model's artifacts",
            hint="Log the model to a tracking server every host reaches, whose artifacts the "
                 "workers download: mlkit.track.serve_tracking() starts one here (or "
                 "mlkit.cluster.connect(..., tracking='server')), or run your own `mlflow "
                 "server --serve-artifacts --allowed-hosts ...` and set "
                 "MLFLOW_TRACKING_URI=http://HOST:PORT; or score on the client with "
                 "mlkit.serve.start(...)",
        )
