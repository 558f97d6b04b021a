"""Dataset fingerprints recorded as MLflow dataset inputs (``mlkit.track.log_dataset``).

The fingerprint itself is :func:`mlkit.data.fingerprint` (content hash of every row, computed
on the cluster, independent of partitioning; schema hash; row count), which also writes the
MLflow dataset input. This module adds what a *tracking* call needs: it insists on an active
run (a fingerprint silently not recorded is lineage lost), checks its arguments before any work,
and adds a searchable run tag ``mlkit.dataset.<name>`` = digest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.exceptions import ConfigError, TrackingError

if TYPE_CHECKING:
    from mlkit.data._fingerprint import Fingerprint

__all__ = ["log_dataset"]


def log_dataset(
    df: Any, name: str, *, context: str = "training", source: str | None = None
) -> Fingerprint:
    """Record ``df``'s fingerprint as a dataset input of the active MLflow run.

    The data never leaves the cluster: a dask DataFrame is hashed partition by partition on the
    workers. The run gets an MLflow dataset input (name, digest, schema, source, context, row
    count and full hashes as input tags: visible in the MLflow UI) and a run tag
    ``mlkit.dataset.<name>`` = digest, so ``mlflow.search_runs(filter_string=
    "tags.`mlkit.dataset.train` = '<digest>'")`` finds every run trained on that exact data.

    Parameters
    ----------
    df : pandas.DataFrame or dask.dataframe.DataFrame
        The data.
    name : str
        Dataset name, e.g. ``"train"``.
    context : str
        Its role in the run: ``"training"``, ``"validation"``, ``"test"``...
    source : str, optional
        Where it came from (a path or URL such as ``s3://bucket/train/``).

    Returns
    -------
    mlkit.data.Fingerprint
        ``.digest``, ``.rows``, ``.content``, ``.schema``, ``.columns``.

    Examples
    --------
    >>> import mlkit, pandas as pd
    >>> with mlkit.track.run("fit"):                                       # doctest: +SKIP
    ...     fp = mlkit.track.log_dataset(pd.DataFrame({"x": [1.0]}), "train")
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"dataset name must be a non-empty string, but got {name!r}")
    if not isinstance(context, str) or not context.strip():
        raise ConfigError(f"context must be a non-empty string, but got {context!r}")
    mlflow = require("mlflow")
    if mlflow.active_run() is None:
        raise TrackingError(
            f"log_dataset({name!r}) needs an active run: call it inside "
            "`with mlkit.track.run(...):` (or mlflow.start_run())"
        )
    from mlkit.data import fingerprint

    fp = fingerprint(df, name=name, source=source, context=context, log=True)
    from mlkit.track._writer import RunWriter

    # The writer turns characters MLflow does not allow in a key into "_".
    writer = RunWriter(mlflow.active_run().info.run_id, mlflow.get_tracking_uri())
    writer.tag(f"mlkit.dataset.{name}", fp.digest)
    writer.flush()
    return fp
