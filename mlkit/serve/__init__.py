"""Serve MLflow models: managed scoring-server processes, REST client, batch scoring on Dask,
and at scale: batching replicas behind one gateway (API keys, limits, metrics, splits).

Attributes load lazily (lazy_loader), so importing this package imports neither MLflow nor
pandas.

Examples
--------
>>> import mlkit
>>> srv = mlkit.serve.start("models:/iris@champion")          # doctest: +SKIP
>>> srv.predict(df.head())                                     # doctest: +SKIP
>>> preds = mlkit.serve.batch_predict(ddf, "models:/iris@champion")   # doctest: +SKIP
>>> gw = mlkit.serve.start("models:/iris@champion", replicas=2, max_batch_rows=64)  # doctest: +SKIP
>>> gw.url                                                     # doctest: +SKIP
'http://127.0.0.1:53212/models/iris/champion'
>>> mlkit.serve.lambda_package("models:/iris@champion", "build/iris-lambda")  # doctest: +SKIP
PosixPath('/work/build/iris-lambda')
>>> mlkit.serve.stop(all=True)                                 # doctest: +SKIP
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
