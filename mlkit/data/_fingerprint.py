"""``fingerprint``: which data exactly? Content hash + schema hash + row count.

The content hash adds up (mod 2**64, twice, with two independent row hashes) pandas' stable
per-row hash over every partition: it identifies the *set* of rows, so reading the same data
again, with another partitioning or block size, gives the same fingerprint; any changed value,
added or dropped row changes it. The schema hash covers column names, order and dtypes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.data._prep.base import is_dask
from mlkit.data._progress import per_partition
from mlkit.exceptions import DataError

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
    import pandas as pd
    import pandas.api.types as pt
else:
    np = require("numpy")
    pd = require("pandas")
    pt = require("pandas.api.types")

__all__ = ["Fingerprint", "fingerprint"]

_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a dataset.

    Attributes
    ----------
    digest : str
        16 hex characters summarising the three below (what MLflow shows).
    content : str
        Hash of the rows (order and partitioning do not matter).
    schema : str
        Hash of column names, order and dtypes.
    rows : int
    columns : list of (name, dtype)
    """

    digest: str
    content: str
    schema: str
    rows: int
    columns: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly).

        Examples
        --------
        >>> fingerprint(pd.DataFrame({"x": [1]})).to_dict()["rows"]
        1
        """
        return asdict(self)


def _dtype_name(dtype: Any) -> str:
    # text is text whether it came as str, string[pyarrow] or object
    if pt.is_string_dtype(dtype) or pt.is_object_dtype(dtype):
        return "str"
    return str(dtype)


def _row_sums(pdf: pd.DataFrame) -> tuple[int, int, int]:
    h = pd.util.hash_pandas_object(pdf, index=False).to_numpy()
    # a second, independent hash of each row hash: together 128 bits of collision resistance
    h2 = pd.util.hash_array(h, hash_key="mlkit-fingerprnt")
    with np.errstate(over="ignore"):
        return len(pdf), int(h.sum(dtype=np.uint64)), int(h2.sum(dtype=np.uint64))


def fingerprint(
    df: Any,
    *,
    name: str | None = None,
    source: str | None = None,
    context: str = "training",
    log: bool = True,
    client: Any = None,
    progress: bool | None = None,
) -> Fingerprint:
    """Hash a pandas or dask DataFrame (one pass, on the cluster for dask).

    When an MLflow run is active (and ``log``), the fingerprint is recorded as the run's dataset
    input (``mlflow.log_input``): name, digest, source, schema, and tags with the full hashes
    and row count. MLflow is only imported when a run is active.

    Parameters
    ----------
    df : pandas or dask DataFrame
    name : str, optional
        Dataset name shown in MLflow (default ``"dataset"``).
    source : str, optional
        Where the data came from (path or URL) for MLflow's dataset source.
    context : str
        MLflow input context (``"training"``, ``"validation"``...).
    log : bool
        Record in the active MLflow run, if any.

    Examples
    --------
    >>> import mlkit
    >>> fp = mlkit.data.fingerprint(mlkit.data.read("data/demo"))    # doctest: +SKIP
    >>> fp.digest, fp.rows                                          # doctest: +SKIP
    ('3f9a0c1d2b7e4a55', 100000)
    """
    if not (isinstance(df, pd.DataFrame) or is_dask(df)):
        raise DataError(f"fingerprint needs a pandas or dask DataFrame, got {type(df).__name__}")
    columns = tuple((str(c), _dtype_name(t)) for c, t in df.dtypes.items())
    parts = per_partition(_row_sums, df, client, progress)
    rows = sum(p[0] for p in parts)
    s1 = sum(p[1] for p in parts) & _MASK
    s2 = sum(p[2] for p in parts) & _MASK
    content = f"{s1:016x}{s2:016x}"
    schema = hashlib.sha256(json.dumps(columns).encode()).hexdigest()[:32]
    digest = hashlib.sha256(f"{content}:{schema}:{rows}".encode()).hexdigest()[:16]
    fp = Fingerprint(digest, content, schema, rows, columns)
    if log:
        _log_if_active(fp, name or "dataset", source, context)
    return fp


def _log_if_active(fp: Fingerprint, name: str, source: str | None, context: str) -> bool:
    # No run can be active in a process that never imported MLflow: don't import it for nothing.
    if "mlflow" not in sys.modules:
        return False
    import mlflow

    if mlflow.active_run() is None:
        return False
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types import ColSpec, DataType
    from mlflow.types import Schema as MlflowSchema

    try:
        with warnings.catch_warnings():
            # MLflow warns when several source types match a local path; any of them will do
            warnings.simplefilter("ignore", UserWarning)
            src = resolve_dataset_source(source) if source else None
    except Exception:  # a path MLflow has no source type for
        src = None
    if src is None:
        src = CodeDatasetSource({"mlkit.source": source or "in-memory"})
    kinds = {"float64": "double", "float32": "float", "int64": "long", "int32": "integer",
             "bool": "boolean", "str": "string"}
    schema = MlflowSchema([
        ColSpec(DataType[kinds.get(dtype, "string")], col) for col, dtype in fp.columns
    ])
    # MLflow's types leave Dataset.profile abstract on MetaDataset; the class implements it
    dataset = MetaDataset(src, name=name, digest=fp.digest, schema=schema)  # type: ignore[abstract]
    mlflow.log_input(dataset, context=context, tags={
        "mlkit.rows": str(fp.rows), "mlkit.content_hash": fp.content,
        "mlkit.schema_hash": fp.schema,
    })
    return True
