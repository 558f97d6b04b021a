"""The public names of ``mlkit.train``, for editors and type checkers.

``mlkit/train/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

from ._ranking import ndcg_at_k, recall_at_k
from ._torch import TorchResult, torch
from ._torch_worker import TrainContext, TrainingStopped
from ._xgboost import XGBoostResult, xgboost

__all__ = [
    "xgboost",
    "XGBoostResult",
    "torch",
    "TorchResult",
    "TrainContext",
    "TrainingStopped",
    "recall_at_k",
    "ndcg_at_k",
]
