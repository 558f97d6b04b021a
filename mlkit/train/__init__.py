"""Distributed training on the active cluster: xgboost.dask and torch.distributed over Dask.

``mlkit.train.xgboost`` and ``mlkit.train.torch`` are functions (the engines live in the
private modules ``_xgboost`` and ``_torch``). Attributes load lazily (lazy_loader), so importing
this package imports neither xgboost nor torch.

Examples
--------
>>> import mlkit
>>> params = {"objective": "binary:logistic"}
>>> result = mlkit.train.xgboost(ddf, "target", params=params)  # doctest: +SKIP
>>> uri = result.log_model()                                    # doctest: +SKIP
>>> out = mlkit.train.torch(train_fn, data=ddf, epochs=3)       # doctest: +SKIP
>>> mlkit.train.recall_at_k({"ann": [3, 1]}, {"ann": [1]}, k=2)  # ranking metrics
1.0
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
