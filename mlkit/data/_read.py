"""``read``: Parquet or CSV (file, folder, glob, fsspec URL) -> dask DataFrame.

Dask does the reading. mlkit adds what a user needs before the first compute: the path exists,
the format is known, the dataset is not empty, Parquet files agree on their schema, and CSV
problems found later (ragged rows, a column whose type changes further down the file) surface as
one :class:`~mlkit.exceptions.DataError` naming the file, the column and example values, instead
of a pandas traceback from a worker.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlkit.data._storage import Located, locate
from mlkit.exceptions import DataError

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["read"]


def read(
    path: Any,
    format: str | None = None,
    *,
    columns: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    backend: str | None = None,
    check: bool = True,
    **kw: Any,
) -> dd.DataFrame:
    """Read Parquet or CSV into a dask DataFrame (lazily; nothing is loaded yet).

    Parameters
    ----------
    path : str or os.PathLike
        A file, a folder of files, a glob (``data/*.csv``) or an fsspec URL (``s3://``,
        ``gs://``, ``file://``...).
    format : {"parquet", "csv"}, optional
        Default: from the file names.
    columns : list of str, optional
        Read only these columns.
    storage_options : dict, optional
        Passed to fsspec (credentials, ``client_kwargs={"endpoint_url": ...}``...).
    backend : {"pandas", "cudf", "auto"}, optional
        ``"cudf"`` reads into GPU memory with dask_cudf; ``"auto"`` (default) does so when the
        active cluster is a Dask-CUDA cluster and dask_cudf is importable.
    check : bool
        Check up front that the dataset is not empty and that Parquet files share one schema
        (reads only file footers / the first lines).
    **kw
        Passed to ``dask.dataframe.read_parquet`` / ``read_csv`` (e.g. ``sep``, ``dtype``,
        ``blocksize``).

    Returns
    -------
    dask.dataframe.DataFrame

    Examples
    --------
    >>> import mlkit
    >>> df = mlkit.data.read("data/demo")                                   # doctest: +SKIP
    >>> df = mlkit.data.read("s3://bucket/sales/*.csv",
    ...                      storage_options={"anon": True})               # doctest: +SKIP
    """
    import dask
    import dask.dataframe as dd

    from mlkit.cluster._preflight import place

    # The workers read the files: refuse here a path only this machine sees (not a lazy frame
    # that fails on the first compute).
    path, storage_options = place(path, "the data path", storage_options,
                                  tracking_artifacts=True)
    loc = locate(path, format, storage_options)
    chosen = _backend(backend)
    with dask.config.set({"dataframe.backend": chosen}):
        if loc.format == "parquet":
            if check:
                _check_parquet(loc)
            # A folder goes to dask whole (hive partitions); a glob as the files it matched.
            target = loc.urls() if loc.glob else loc.path
            try:
                return dd.read_parquet(
                    target, columns=columns, storage_options=storage_options, **kw
                )
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read Parquet {loc.path!r}: {exc}") from exc
        if chosen == "cudf":
            # dask_cudf parses CSV on the GPU: mlkit's pandas-side checks do not apply there
            return dd.read_csv(loc.urls(), usecols=columns, storage_options=storage_options,
                               **kw)
        return _read_csv(loc, columns, storage_options, check, kw)


def _backend(backend: str | None) -> str:
    if backend in (None, "auto"):
        from mlkit.cluster import current

        c = current()
        if c is not None and c.kind == "cuda":
            from mlkit._imports import available

            if available("dask_cudf"):
                return "cudf"
        return "pandas"
    if backend == "cudf":
        from mlkit._imports import require

        require("dask_cudf", "gpu")
        return "cudf"
    if backend == "pandas":
        return "pandas"
    raise DataError(f"backend must be 'pandas', 'cudf' or 'auto', but got {backend!r}")


# -- Parquet ---------------------------------------------------------------------------------


def _footer(fs: Any, file: str) -> tuple[str, int, Any]:
    import pyarrow.parquet as pq

    try:
        with fs.open(file, "rb") as f:
            meta = pq.read_metadata(f)
        return file, meta.num_rows, meta.schema.to_arrow_schema()
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a file that isn't Parquet
        raise DataError(
            f"{fs.unstrip_protocol(file)!r} is not a readable Parquet file: {exc}"
        ) from exc


def _check_parquet(loc: Located) -> None:
    """Empty dataset and schema drift between files, from the footers only."""
    with ThreadPoolExecutor(max_workers=min(16, len(loc.files))) as pool:
        footers = list(pool.map(lambda f: _footer(loc.fs, f), loc.files))
    if sum(n for _, n, _ in footers) == 0:
        raise DataError(f"{loc.path!r} holds no rows (empty dataset)")
    first_file, _, first = footers[0]
    for file, _, schema in footers[1:]:
        for field in first:
            idx = schema.get_field_index(field.name)
            if idx < 0:
                raise DataError(
                    f"column {field.name!r} is in {loc.fs.unstrip_protocol(first_file)!r} but "
                    f"missing from {loc.fs.unstrip_protocol(file)!r}: the files of {loc.path!r} "
                    "do not share one schema"
                )
            other = schema.field(idx).type
            if other != field.type and not (_numeric(other) and _numeric(field.type)):
                raise DataError(
                    f"column {field.name!r} has mixed types: {field.type} in "
                    f"{loc.fs.unstrip_protocol(first_file)!r} but {other} in "
                    f"{loc.fs.unstrip_protocol(file)!r}; rewrite the files with one type"
                )


def _numeric(t: Any) -> bool:
    import pyarrow.types as pt

    return pt.is_integer(t) or pt.is_floating(t)


# -- CSV -------------------------------------------------------------------------------------


class _CSVReader:
    """``pd.read_csv`` that reports bad blocks as one DataError naming the file and column.

    dask calls it on every block (and on the sample it infers dtypes from); it must pickle, so it
    is a small class rather than a closure.
    """

    __name__ = "read_csv"  # dask names its tasks and messages after the reader

    def __init__(self, where: str, expected: dict[str, str] | None = None) -> None:
        self.where = where
        self.expected = expected

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        try:
            df = pd.read_csv(*args, **kwargs)
        except pd.errors.ParserError as exc:
            raise DataError(
                f"{self.where}: rows have different numbers of fields ({str(exc).strip()}); "
                "fix the file, or pass on_bad_lines='skip' to drop such rows"
            ) from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{self.where} is empty (no header, no rows)") from None
        if self.expected:
            self._check_types(df)
        return df

    def _check_types(self, df: pd.DataFrame) -> None:
        from pandas.api import types as pt

        for col, want in (self.expected or {}).items():
            if col not in df.columns:
                continue
            got = df[col].dtype
            want_dtype = pd.api.types.pandas_dtype(want)
            numeric_wanted = pt.is_numeric_dtype(want_dtype) and not pt.is_bool_dtype(want_dtype)
            if numeric_wanted and not pt.is_numeric_dtype(got):
                values = df[col]
                bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
                examples = list(dict.fromkeys(bad.astype(str).tolist()))[:3]
                raise DataError(
                    f"column {col!r} of {self.where} has mixed types: its first rows are "
                    f"{want_dtype} but it also holds {examples}; fix the data or read the "
                    f"column as text with dtype={{{col!r}: 'str'}}"
                )
            if pt.is_integer_dtype(want_dtype) and pt.is_float_dtype(got):
                raise DataError(
                    f"column {col!r} of {self.where} looked like integers in its first rows but "
                    f"has missing values further down; pass dtype={{{col!r}: 'float64'}} or "
                    "assume_missing=True"
                )


def _csv_empty(loc: Located, kw: dict[str, Any]) -> bool:
    """True if no file has a data row after its header (reads at most two lines of each)."""
    header = kw.get("header", "infer")
    need = 1 if header is None or kw.get("names") is not None and header == "infer" else 2
    for file in loc.files:
        with loc.fs.open(file, "rt", compression="infer") as f:
            lines = 0
            for line in f:
                if line.strip():
                    lines += 1
                if lines >= need:
                    return False
    return True


def _read_csv(
    loc: Located, columns: list[str] | None, storage_options: dict | None, check: bool,
    kw: dict[str, Any],
) -> Any:
    from dask.dataframe.io.csv import make_reader

    where = repr(loc.shown(loc.files[0])) if len(loc.files) == 1 else (
        f"{loc.path!r} ({len(loc.files)} files)"
    )
    if check and _csv_empty(loc, kw):
        raise DataError(f"{where} holds no rows (empty dataset)")
    urls = loc.urls()
    if columns is not None:
        kw = {**kw, "usecols": columns}
    try:
        # Build once to learn the dtypes dask infers from the sample, then again with a reader
        # that checks every block against them (a changing type surfaces as a DataError).
        first = make_reader(_CSVReader(where), "read_csv", "CSV")(
            urls, storage_options=storage_options, **kw
        )
        expected = {c: str(t) for c, t in first.dtypes.items()}
        if len(urls) == 1:
            return make_reader(_CSVReader(where, expected), "read_csv", "CSV")(
                urls, storage_options=storage_options, **kw
            )
        # Several files: one reader per file, so a bad block's error names its own file (dask
        # hands a reader only the bytes of a block, never where they came from). Each file's
        # sample is read in parallel, as the Parquet path reads every footer.
        import dask.dataframe as dd

        def one(i: int) -> Any:
            shown = repr(loc.shown(loc.files[i]))
            frame = make_reader(_CSVReader(shown, expected), "read_csv", "CSV")(
                urls[i], storage_options=storage_options, **kw
            )
            _same_columns(frame, first, shown, where)
            return frame

        with ThreadPoolExecutor(max_workers=min(16, len(urls))) as pool:
            frames = list(pool.map(one, range(len(urls))))
        return dd.concat(frames, ignore_unknown_divisions=True)
    except DataError:
        raise
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read CSV {where}: {exc}") from exc


def _same_columns(frame: Any, first: Any, shown: str, where: str) -> None:
    if list(frame.columns) != list(first.columns):
        raise DataError(
            f"{shown} has columns {list(frame.columns)}, but the other files of {where} have "
            f"{list(first.columns)}; read the files separately or make their headers agree"
        )
