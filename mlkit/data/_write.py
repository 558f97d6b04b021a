"""``write``: a dask (or pandas) DataFrame -> Parquet folder, all or nothing."""

from __future__ import annotations

from typing import Any

from mlkit.data._progress import compute
from mlkit.data._storage import staged_output
from mlkit.exceptions import DataError

__all__ = ["write"]


def write(
    df: Any,
    path: str,
    *,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    client: Any = None,
    progress: bool | None = None,
) -> str:
    """Write a DataFrame to a Parquet folder on the cluster, partition by partition.

    The files go to a hidden temporary folder that is renamed to ``path`` only when every
    partition is written: an error or an interrupt leaves no partial dataset behind.

    Parameters
    ----------
    df : dask.dataframe.DataFrame or pandas.DataFrame
        What to write (a pandas frame is written as one partition).
    path : str
        Output folder, local or fsspec URL.
    overwrite : bool
        Replace an existing ``path``.
    storage_options : dict, optional
        fsspec options for URLs.
    client, progress
        As for :func:`mlkit.data.synthetic`.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import mlkit
    >>> out = mlkit.data.write(prep.transform(df), "data/features")   # doctest: +SKIP
    """
    import dask.dataframe as dd
    import pandas as pd

    if isinstance(df, pd.DataFrame):
        df = dd.from_pandas(df, npartitions=1)
    elif not isinstance(df, dd.DataFrame):
        raise DataError(f"write() needs a pandas or dask DataFrame, but got {type(df).__name__}")
    from mlkit.cluster._preflight import place

    path, storage_options = place(path, "the output folder", storage_options,
                                  tracking_artifacts=True)
    with staged_output(path, overwrite=overwrite, storage_options=storage_options) as (fs, tmp):
        job = df.to_parquet(
            fs.unstrip_protocol(tmp),
            storage_options=storage_options,
            write_index=False,
            write_metadata_file=False,
            compute=False,
        )
        compute(job, client=client, progress=progress)
    return str(path)
