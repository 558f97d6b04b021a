"""MLflow "models from code" file for :class:`mlkit.train._pyfunc.BoosterPipeline`.

MLflow copies this file into each logged model and runs it when the model is loaded; the
columns and iteration range come from the model's ``model_config``.
"""

import mlflow.models

from mlkit.train._pyfunc import BoosterPipeline

mlflow.models.set_model(BoosterPipeline())
