"""MLflow "models from code" file for :class:`mlkit.train._pyfunc.BoosterPipeline`.

MLflow copies this file into each logged model and runs it when the model is loaded; the
columns and iteration range come from the model's ``model_config``.
"""


from mlkit._imports import require
from mlkit.train._pyfunc import BoosterPipeline

# Engines are optional extras: require() names the extra to install when one is missing.
require("mlflow.models")  # loads mlflow.models for the name below
mlflow = require("mlflow")

mlflow.models.set_model(BoosterPipeline())
