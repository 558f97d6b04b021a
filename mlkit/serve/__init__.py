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

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_server": ["Server", "ServerList", "start", "stop", "list_servers", "get"],
        "_batch": ["batch_predict"],
        "_docker": ["dockerfile"],
        "_lambda": ["lambda_package"],
    },
)
