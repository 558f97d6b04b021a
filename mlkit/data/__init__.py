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

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    # mlkit.data.examples: real datasets shipped inside installed wheels (digits, reviews, ...)
    submodules=["examples"],
    submod_attrs={
        "_read": ["read"],
        "_synthetic": ["synthetic"],
        "_write": ["write"],
        "_validate": ["Column", "Schema", "ValidationReport", "validate"],
        "_split": ["split"],
        "_fingerprint": ["Fingerprint", "fingerprint"],
        "_profile": ["Profile", "profile"],
        "_prep.base": ["Transformer"],
        "_prep.impute": ["SimpleImputer"],
        "_prep.scale": ["StandardScaler", "MinMaxScaler"],
        "_prep.encode": ["OneHotEncoder", "OrdinalEncoder"],
        "_prep.log": ["LogTransformer"],
        "_prep.compose": ["ColumnTransformer", "Pipeline", "make_preprocessor"],
    },
)
