"""The MLflow pyfunc a trained booster is logged as: raw pandas columns in, the bundled
preprocessing applied with the same function as in training, then the booster.

It is logged as "models from code" (:mod:`mlkit.train._pyfunc_model` is the model file and the
columns travel in ``model_config``), so nothing of mlkit is pickled into the model.
"""

from __future__ import annotations

from typing import Any

from mlkit._imports import require

# Engines are optional extras: require() names the extra to install when one is missing.
require("mlflow.pyfunc")  # loads mlflow.pyfunc for the name below
mlflow = require("mlflow")
np = require("numpy")
pd = require("pandas")

__all__ = ["BoosterPipeline"]


class BoosterPipeline(mlflow.pyfunc.PythonModel):
    """Raw columns -> fitted preprocessing -> xgboost Booster -> predictions.

    Parameters
    ----------
    columns : list of str, optional
        The raw input columns in training order (from ``model_config["columns"]`` when loaded
        by MLflow); extra request columns are ignored.
    iteration_range : tuple of int, optional
        Trees to use (``(0, best_iteration + 1)`` after early stopping).
    """

    def __init__(
        self, columns: list[str] | None = None, iteration_range: tuple[int, int] | None = None
    ) -> None:
        self.columns = list(columns or [])
        self.iteration_range = iteration_range
        self.booster: Any = None
        self.preprocess: Any = None

    def load_context(self, context: Any) -> None:
        import cloudpickle
        import xgboost as xgb

        config = dict(getattr(context, "model_config", None) or {})
        self.columns = list(config.get("columns", self.columns))
        rng = config.get("iteration_range")
        self.iteration_range = tuple(rng) if rng else None
        booster = xgb.Booster()
        booster.load_model(context.artifacts["booster"])
        # Serving runs on CPU processes, whatever the training device was.
        booster.set_param({"device": "cpu"})
        self.booster = booster
        path = context.artifacts.get("preprocess")
        if path:
            with open(path, "rb") as fh:
                self.preprocess = cloudpickle.load(fh)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        import xgboost as xgb

        from mlkit.train._preprocess import transform_frame

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"input is missing column(s) {missing}; the model expects {self.columns}"
            )
        frame = frame[self.columns]
        if self.preprocess is not None:
            frame = transform_frame(self.preprocess, frame)
        matrix = xgb.DMatrix(frame, enable_categorical=True)
        kwargs = {"iteration_range": self.iteration_range} if self.iteration_range else {}
        return self.booster.predict(matrix, **kwargs)
