"""Data at scale: read, validate, preprocess, split and fingerprint datasets on the cluster.

Attributes load lazily (lazy_loader): importing this package imports neither dask nor pandas.

Examples
--------
>>> import mlkit
>>> path = mlkit.data.synthetic("data/demo", rows=100_000, features=10)   # doctest: +SKIP
>>> df = mlkit.data.read(path)                                            # doctest: +SKIP
>>> prep = mlkit.data.make_preprocessor(df, exclude=["target"])          # doctest: +SKIP
>>> features = prep.fit(df).transform(df)                                 # doctest: +SKIP
>>> digits = mlkit.data.examples.digits()                                 # doctest: +SKIP
"""

import lazy_loader as _lazy

# The names live in __init__.pyi (one list, which editors and type checkers read too).
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
