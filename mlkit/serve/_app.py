"""The instrumented scoring app: MLflow's own app, wrapped; run by uvicorn in the server process.

``serve.start(..., metrics=True)`` or ``log_predictions=True`` launches::

    python -m uvicorn --factory mlkit.serve._app:create_app --host H --port P --workers N

with its settings in the ``MLKIT_SERVE_CONFIG`` environment variable (JSON). MLflow's CLI has no
hook for metrics or logging, so this module builds the very app ``mlflow models serve`` runs
(``mlflow.pyfunc.scoring_server.init``, same parsing, signature enforcement and responses) and
adds :class:`~mlkit.serve._middleware.ServingMiddleware` around it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from typing import Any

__all__ = ["create_app", "CONFIG_ENV"]

CONFIG_ENV = "MLKIT_SERVE_CONFIG"


def _rows(predictions: Any) -> int:
    try:
        return len(predictions)
    except TypeError:
        return 1


def check_value_types(data: Any, schema: Any) -> None:
    """Refuse containers (lists, dicts) in columns the signature declares as strings.

    MLflow's schema enforcement converts numbers strictly but lets a JSON list or object
    through a ``string`` column, where the model then crashes; that is the client's mistake and
    must be a 400 naming the column, not a model failure.
    """
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
    from mlflow.types import DataType

    if not isinstance(data, pd.DataFrame) or schema.is_tensor_spec():
        return
    for spec in schema.inputs:
        if spec.name not in data.columns or spec.type != DataType.string:
            continue
        column = data[spec.name]
        if column.dtype != object:
            continue
        bad = column.map(lambda v: isinstance(v, (list, dict, tuple, set)))
        if bad.any():
            row = int(bad.to_numpy().argmax())
            value = column.iloc[row]
            raise MlflowException(
                f"column {spec.name!r} must hold strings (its signature type is string), but row "
                f"{row} holds a {type(value).__name__}: {str(value)[:80]}",
                error_code=INVALID_PARAMETER_VALUE,
            )


def instrument_model(model: Any, log: Any = None, metrics: Any = None) -> None:
    """Wrap ``model.predict`` (a PyFuncModel) to log predictions and classify model crashes.

    ``PyFuncModel.predict`` first enforces the signature (raising ``MlflowException``: a client
    error, kept as MLflow answers it, 4xx) and then calls the flavor's predict. Any other
    exception comes from the model itself on input that passed the signature: it is re-raised as
    an ``MlflowException`` with ``INTERNAL_ERROR`` so the server answers 500 instead of MLflow's
    400, with the traceback in the server log rather than in the response.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

    from mlkit.serve._middleware import REQUEST

    inner = model.predict
    input_schema = model.metadata.get_input_schema()

    @functools.wraps(inner)
    def predict(data: Any, params: dict[str, Any] | None = None) -> Any:
        request = REQUEST.get()
        if request is not None:
            request.predicted = True
        rid = request.id if request is not None else "-"
        if input_schema is not None:
            check_value_types(data, input_schema)
        # what was received, whatever the model does to its input (pandas copy-on-write makes
        # this shallow copy cost nothing unless someone writes to the frame)
        received = data.copy(deep=False) if hasattr(data, "copy") and log is not None else data
        try:
            predictions = inner(data, params=params)
        except MlflowException:
            raise
        except Exception as exc:
            print(f"mlkit: the model failed on request {rid}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            raise MlflowException(
                f"the model failed while predicting (request {rid}): "
                f"{type(exc).__name__}: {str(exc)[:300]}. The input passed the model's signature, "
                "so this is a server-side error; the traceback is in the server log.",
                error_code=INTERNAL_ERROR,
            ) from None
        if metrics is not None:
            metrics.rows.inc(_rows(predictions))
        if log is not None:
            t_ns = request.time_ns if request is not None else time.time_ns()
            log.record(received, predictions, t_ns, rid)
        return predictions

    model.predict = predict


def create_app() -> Any:
    """uvicorn factory: load the model, build MLflow's app, wrap it (see module docstring)."""
    from mlflow.pyfunc import scoring_server

    from mlkit.serve._middleware import Metrics, ServingMiddleware
    from mlkit.serve._predlog import PredictionLog

    cfg = json.loads(os.environ[CONFIG_ENV])
    model = scoring_server.load_model_with_mlflow_config(cfg["model_path"])
    metrics = Metrics() if cfg.get("metrics") else None
    log = None
    if cfg.get("log_dir"):
        log = PredictionLog(
            cfg["log_dir"],
            flush_every=int(cfg.get("flush_every", 100)),
            flush_seconds=float(cfg.get("flush_seconds", 10.0)),
        )
    instrument_model(model, log=log, metrics=metrics)
    app = scoring_server.init(model)
    return ServingMiddleware(app, metrics=metrics, on_shutdown=[log.close] if log else [])
