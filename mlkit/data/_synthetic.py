"""Synthetic tabular datasets of any size, generated chunk by chunk on the cluster.

Rows come in fixed blocks of 65,536, each drawn from its own seeded generator
(``numpy.random.default_rng([seed, 1, block])``), so the data depend only on ``seed`` and the
row index: the partitioning changes the file layout, never the rows, and the same arguments
give the same bytes. No process ever holds more than one partition.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from mlkit import _args
from mlkit.data._progress import compute
from mlkit.data._storage import staged_output
from mlkit.exceptions import ConfigArgumentError

__all__ = ["synthetic"]

_BLOCK = 65_536
_MARKER = "_mlkit_synthetic.json"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _labels(categories: int) -> np.ndarray:
    if categories <= len(_LETTERS):
        return np.array(list(_LETTERS[:categories]), dtype=object)
    return np.array([f"v{k}" for k in range(categories)], dtype=object)


def _model(seed: int, features: int, categorical: int, categories: int, outputs: int) -> dict:
    """The hidden ground truth the target is drawn from (small; shipped to every task)."""
    rng = np.random.default_rng([seed, 0])
    return {
        "weights": rng.standard_normal((features, outputs)) / math.sqrt(features),
        "effects": rng.standard_normal((categorical, categories, outputs)) * 0.5,
    }


def _block(
    b: int, *, seed: int, features: int, categorical: int, categories: int, task: str,
    classes: int, missing: float, model: dict,
) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 1, b])
    x = rng.standard_normal((_BLOCK, features))
    codes = rng.integers(0, categories, size=(_BLOCK, categorical))
    score = x @ model["weights"]
    for j in range(categorical):
        score += model["effects"][j][codes[:, j]]
    if task == "regression":
        target: np.ndarray = score[:, 0] + 0.1 * rng.standard_normal(_BLOCK)
    else:
        # Gumbel-max: a draw from the softmax of the scores, so classes overlap as in real data.
        target = np.argmax(score * 2.0 + rng.gumbel(size=score.shape), axis=1).astype("int64")
    if missing > 0:
        x[rng.random(x.shape) < missing] = np.nan
    data: dict[str, Any] = {f"f{i}": x[:, i] for i in range(features)}
    labels = _labels(categories)
    for j in range(categorical):
        col = labels[codes[:, j]]
        if missing > 0:
            col[rng.random(_BLOCK) < missing] = None
        data[f"c{j}"] = pd.array(col, dtype="str")
    data["target"] = target
    return pd.DataFrame(data)


def _rows(start: int, stop: int, **kw: Any) -> pd.DataFrame:
    first, last = start // _BLOCK, (stop - 1) // _BLOCK
    frames = [_block(b, **kw) for b in range(first, last + 1)]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    offset = first * _BLOCK
    return df.iloc[start - offset : stop - offset].reset_index(drop=True)


def _write_part(fs: Any, path: str, start: int, stop: int, kw: dict[str, Any]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_rows(start, stop, **kw), preserve_index=False)
    with fs.open(path, "wb") as f:
        pq.write_table(table, f, compression="snappy")
    return table.num_rows


def _check(name: str, value: Any, low: int) -> int:
    return _args.integer(name, value, low=low, error=ConfigArgumentError)


def synthetic(
    path: str,
    rows: int = 100_000,
    features: int = 20,
    task: str = "classification",
    *,
    partitions: int | None = None,
    categorical: int = 0,
    categories: int = 5,
    classes: int = 2,
    missing: float = 0.0,
    seed: int = 0,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    client: Any = None,
    progress: bool | None = None,
) -> str:
    """Write a synthetic Parquet dataset chunk by chunk on the cluster; return its path.

    Columns: ``f0 .. f{features-1}`` (float64, standard normal), ``c0 .. c{categorical-1}``
    (strings ``"a"``, ``"b"``, ...), then ``target`` (int64 class for classification, float64 for
    regression) drawn from a hidden linear model of the features and categories.

    Parameters
    ----------
    path : str
        Output folder (local path or fsspec URL such as ``s3://bucket/data``); one
        ``part.NNNNN.parquet`` file per partition.
    rows, features : int
        Size of the table.
    task : {"classification", "regression"}
        Kind of target.
    partitions : int, optional
        Number of files/tasks (default: one per 250,000 rows).
    categorical : int
        Number of categorical string columns ``c0 ..``.
    categories : int
        Distinct values per categorical column.
    classes : int
        Number of classes for classification.
    missing : float
        Fraction of feature and category values replaced by missing values (NaN / None).
    seed : int
        Same seed and arguments -> same bytes. The rows do not depend on ``partitions``.
    overwrite : bool
        Replace an existing dataset at ``path``. Without it an existing path is an error, except
        a dataset this function wrote with the very same arguments, which is reused as is.
    storage_options : dict, optional
        fsspec options for URLs (credentials, ``endpoint_url``...).
    client : distributed.Client, optional
        Defaults to the active mlkit cluster.
    progress : bool, optional
        Show a progress bar (default: only when the work takes more than 2 s).

    Returns
    -------
    str
        ``path``, ready for :func:`mlkit.data.read`.

    Examples
    --------
    >>> import mlkit
    >>> p = mlkit.data.synthetic("data/demo", rows=1_000_000, features=20,
    ...                          categorical=3, missing=0.01, seed=0)    # doctest: +SKIP
    >>> mlkit.data.read(p).columns[:3].tolist()                           # doctest: +SKIP
    ['f0', 'f1', 'f2']
    """
    rows = _check("rows", rows, 1)
    features = _check("features", features, 1)
    categorical = _check("categorical", categorical, 0)
    categories = _check("categories", categories, 2)
    classes = _check("classes", classes, 2)
    seed = _check("seed", seed, 0)
    if task not in ("classification", "regression"):
        raise ConfigArgumentError(
            f"task must be 'classification' or 'regression', but got {task!r}"
        )
    if not isinstance(missing, (int, float)) or not 0.0 <= float(missing) < 1.0:
        raise ConfigArgumentError(f"missing must be a fraction in [0, 1), but got {missing!r}")
    if partitions is None:
        partitions = max(1, math.ceil(rows / 250_000))
    partitions = _check("partitions", partitions, 1)
    if partitions > rows:
        raise ConfigArgumentError(
            f"partitions={partitions} exceeds rows={rows}: use at most one per row"
        )

    from mlkit.cluster._preflight import place

    # Workers on other hosts write the parts: a path only this machine sees is refused here.
    path, storage_options = place(path, "the synthetic data folder", storage_options,
                                  tracking_artifacts=True)
    spec = {
        "rows": rows, "features": features, "task": task, "partitions": partitions,
        "categorical": categorical, "categories": categories, "classes": classes,
        "missing": float(missing), "seed": seed, "block": _BLOCK,
    }
    if not overwrite and _already_written(path, spec, storage_options):
        return str(path)

    kw = {
        "seed": seed, "features": features, "categorical": categorical,
        "categories": categories, "task": task, "classes": classes, "missing": float(missing),
        "model": _model(seed, features, categorical, categories,
                        1 if task == "regression" else classes),
    }
    from dask import delayed

    with staged_output(path, overwrite=overwrite, storage_options=storage_options) as (fs, tmp):
        bounds = [rows * i // partitions for i in range(partitions + 1)]
        width = max(5, len(str(partitions - 1)))
        tasks = [
            delayed(_write_part, pure=True)(
                fs, f"{tmp}/part.{i:0{width}d}.parquet", bounds[i], bounds[i + 1], kw,
                dask_key_name=f"mlkit-synthetic-{i}-{tmp.rsplit('-', 1)[-1]}",
            )
            for i in range(partitions)
        ]
        written = compute(*tasks, client=client, progress=progress)
        assert sum(written) == rows
        with fs.open(f"{tmp}/{_MARKER}", "w") as f:
            json.dump(spec, f, sort_keys=True)
    return str(path)


def _already_written(path: str, spec: dict, storage_options: dict | None) -> bool:
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(str(path), **(storage_options or {}))
    marker = f"{root.rstrip('/')}/{_MARKER}"
    try:
        with fs.open(marker, "r") as f:
            return json.load(f) == spec
    except (FileNotFoundError, OSError, ValueError):
        return False
