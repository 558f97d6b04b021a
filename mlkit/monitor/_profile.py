"""Reference profiles: the statistics of the training (reference) data, computed once.

A profile holds, per numeric feature, the reference quantile grid (fine bins for the KS test,
deciles for PSI, coarser bins for the report's histograms) with the exact reference counts in
those bins, and per categorical feature the category counts. It is a small JSON document, saved
to a file or logged to an MLflow run next to the model, so later drift checks scan only the
current data.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkit import _args
from mlkit._fs import atomic_write
from mlkit._imports import require
from mlkit.exceptions import ConfigArgumentError, ConfigError, DataError, TrackingError
from mlkit.monitor import _scan

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import numpy as np
else:
    np = require("numpy")

__all__ = [
    "ReferenceProfile",
    "NumericProfile",
    "CategoricalProfile",
    "reference_profile",
    "load_profile",
    "PROFILE_ARTIFACT",
]

PROFILE_ARTIFACT = "mlkit_monitor/reference_profile.json"
_FORMAT = 1


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass
class NumericProfile:
    """Reference statistics of one numeric feature.

    ``edges`` are the fine bin edges (right-closed bins, open-ended at both sides) and ``counts``
    the exact reference counts in them; ``psi_edges`` (the PSI bins) are a subset of ``edges``.
    """

    n: int
    nulls: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    edges: np.ndarray
    counts: np.ndarray
    psi_edges: np.ndarray
    dtype: str = "float64"
    kind: str = field(default="numeric", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "n": self.n,
            "nulls": self.nulls,
            "mean": _clean(self.mean),
            "std": _clean(self.std),
            "min": _clean(self.min),
            "max": _clean(self.max),
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "psi_edges": self.psi_edges.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        return cls(
            n=int(d["n"]),
            nulls=int(d["nulls"]),
            mean=d.get("mean"),
            std=d.get("std"),
            min=d.get("min"),
            max=d.get("max"),
            edges=np.asarray(d["edges"], dtype=float),
            counts=np.asarray(d["counts"], dtype=np.int64),
            psi_edges=np.asarray(d["psi_edges"], dtype=float),
            dtype=d.get("dtype", "float64"),
        )


@dataclass
class CategoricalProfile:
    """Reference statistics of one categorical feature: counts of its most frequent categories
    (at most ``max_categories``) and of all others together (``other``)."""

    n: int
    nulls: int
    categories: dict[str, int]
    other: int = 0
    dtype: str = "str"
    kind: str = field(default="categorical", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "n": self.n,
            "nulls": self.nulls,
            "categories": self.categories,
            "other": self.other,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        return cls(
            n=int(d["n"]),
            nulls=int(d["nulls"]),
            categories={str(k): int(v) for k, v in d["categories"].items()},
            other=int(d.get("other", 0)),
            dtype=d.get("dtype", "str"),
        )


@dataclass
class ReferenceProfile:
    """Statistics of a reference dataset, reusable for any number of drift checks.

    Build one with :func:`reference_profile`; pass it to :func:`mlkit.monitor.drift` as the
    reference. ``save`` / ``load`` use a JSON file; ``log`` stores it in an MLflow run (next to
    the model) and :func:`load_profile` reads it back from a run or model URI.

    Examples
    --------
    >>> prof = reference_profile(train_df)                   # doctest: +SKIP
    >>> prof.save("reference.json")                          # doctest: +SKIP
    >>> ReferenceProfile.load("reference.json").features     # doctest: +SKIP
    ['f0', 'f1', 'city']
    """

    features: dict[str, NumericProfile | CategoricalProfile]
    rows: int
    resolution: int
    bins: int
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )

    @property
    def names(self) -> list[str]:
        """Feature names in the profile, in column order."""
        return list(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "kind": "mlkit.monitor.ReferenceProfile",
            "created": self.created,
            "rows": self.rows,
            "resolution": self.resolution,
            "bins": self.bins,
            "features": {k: v.to_dict() for k, v in self.features.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceProfile:
        if d.get("kind") != "mlkit.monitor.ReferenceProfile":
            raise DataError("this JSON document is not an mlkit reference profile")
        if int(d.get("format", 0)) > _FORMAT:
            raise DataError(
                f"reference profile format {d.get('format')} is newer than this mlkit "
                f"understands ({_FORMAT}); upgrade mlkit"
            )
        feats: dict[str, NumericProfile | CategoricalProfile] = {}
        for name, fd in d["features"].items():
            feats[name] = (
                NumericProfile.from_dict(fd) if fd["kind"] == "numeric"
                else CategoricalProfile.from_dict(fd)
            )
        return cls(
            features=feats,
            rows=int(d["rows"]),
            resolution=int(d["resolution"]),
            bins=int(d["bins"]),
            created=d.get("created", ""),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile as JSON (to a temporary name first, then renamed into place).

        Examples
        --------
        >>> prof.save("reference.json")     # doctest: +SKIP
        """
        path = Path(path)
        _save_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by :meth:`save`.

        Examples
        --------
        >>> ReferenceProfile.load("reference.json")     # doctest: +SKIP
        """
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise DataError(f"reference profile {str(path)!r} does not exist") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"reference profile {str(path)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(doc)

    def log(self, run_id: str | None = None, artifact_file: str = PROFILE_ARTIFACT) -> str:
        """Store the profile as a JSON artifact of an MLflow run (the active one by default).

        Log it in the run that logged the model, so ``load_profile("runs:/<run>/...")`` or the
        model's URI finds it later. Returns the run id.

        Examples
        --------
        >>> with mlkit.track.run("train"):        # doctest: +SKIP
        ...     reference_profile(train).log()
        """
        from mlkit._imports import require

        mlflow = require("mlflow")
        from mlkit import track

        track.configure()
        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise TrackingError(
                    "no active MLflow run to log the reference profile to: call it inside "
                    "`with mlkit.track.run(...):` or pass run_id="
                )
            run_id = active.info.run_id
        mlflow.MlflowClient().log_dict(run_id, self.to_dict(), artifact_file)
        return run_id

    def __repr__(self) -> str:
        kinds = [v.kind for v in self.features.values()]
        return (
            f"ReferenceProfile(rows={self.rows}, features={len(self.features)} "
            f"({kinds.count('numeric')} numeric, {kinds.count('categorical')} categorical))"
        )


def _save_text(path: Path, text: str) -> None:
    # A user's file (a profile, a report to share): the umask decides who may read it, as for
    # any file a notebook writes (mkstemp's 0600 used to follow the temporary file into place).
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


# -- building --------------------------------------------------------------------------------
def default_features(df: Any) -> list[str]:
    """Columns drift looks at by default: all except mlkit's own ``_mlkit_*`` log columns and
    columns of types no test applies to (datetimes)."""
    return [
        str(c) for c, dt in df.dtypes.items()
        if not str(c).startswith("_mlkit_") and _scan.column_kind(dt) is not None
    ]


def _check_int(name: str, value: Any, low: int) -> int:
    return _args.integer(name, value, low=low, error=ConfigArgumentError)


def check_features(df: Any, features: Sequence[str] | None, what: str) -> list[str]:
    if features is None:
        return default_features(df)
    if isinstance(features, str):
        features = [features]
    features = list(features)
    if not features:
        raise ConfigError("features must name at least one column, but got an empty list")
    columns = {str(c) for c in df.columns}
    missing = [f for f in features if f not in columns]
    if missing:
        raise DataError(
            f"{what} has no column(s) {missing}; its columns are {sorted(columns)}"
        )
    return features


def _check_frame(df: Any, what: str) -> None:
    if not _scan.is_dask(df) and type(df).__name__ != "DataFrame":
        raise DataError(
            f"{what} must be a pandas or dask DataFrame, but got {type(df).__name__}"
        )


def build(
    df: Any,
    features: list[str],
    kinds: dict[str, str],
    *,
    bins: int,
    resolution: int,
    max_categories: int,
    sample: int,
    seed: int,
    others: Sequence[Any] = (),
    client: Any = None,
    progress: bool | None = None,
) -> tuple[ReferenceProfile, list[dict[str, Any]]]:
    """Profile ``df`` and count ``others`` on its grid: two passes over ``df``, one over others."""
    numeric = [f for f in features if kinds[f] == "numeric"]
    categorical = [f for f in features if kinds[f] == "categorical"]
    q = _scan._quantile_grid(resolution, bins)
    sk = _scan.sketch(
        df, numeric, categorical, q, cap=sample, seed=seed, client=client, progress=progress
    )

    interior = (q > 0) & (q < 1)
    psi_mask = np.isin(q, np.arange(1, bins) / bins)
    grid: dict[str, dict[str, np.ndarray] | None] = {}
    for name in numeric:
        qv = sk[name]["quantiles"]
        if qv is None:  # no finite value at all
            grid[name] = None
            continue
        grid[name] = {
            "edges": np.unique(qv[interior]),
            "psi": np.unique(qv[psi_mask]),
        }

    cat_profiles: dict[str, CategoricalProfile] = {}
    dtypes = df.dtypes
    for name in categorical:
        counts = sk[name]["counts"]
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = dict(ranked[:max_categories])
        cat_profiles[name] = CategoricalProfile(
            n=sum(counts.values()),
            nulls=sk[name]["nulls"],
            categories=kept,
            other=sum(v for _, v in ranked[max_categories:]),
            dtype=str(dtypes[name]),
        )

    spec_all = {
        "numeric": {n: (g["edges"] if g is not None else None) for n, g in grid.items()},
        "categorical": {n: set(p.categories) for n, p in cat_profiles.items()},
    }
    # The reference's categories are counted already; only its numeric columns need a pass.
    spec_ref = {"numeric": spec_all["numeric"], "categorical": {}}
    jobs = [(df, spec_ref), *((o, spec_all) for o in others)]
    counted = _scan.count(jobs, client=client, progress=progress)
    ref_counts = counted[0]

    feats: dict[str, NumericProfile | CategoricalProfile] = {}
    for name in features:
        if name in cat_profiles:
            feats[name] = cat_profiles[name]
            continue
        c = ref_counts[name]
        g = grid[name]
        n = c["n"]
        empty = np.array([], dtype=float)
        feats[name] = NumericProfile(
            n=n,
            nulls=c["nulls"],
            mean=c["mean"] if n else None,
            std=math.sqrt(c["m2"] / (n - 1)) if n > 1 else None,
            min=c["min"] if n else None,
            max=c["max"] if n else None,
            edges=g["edges"] if g else empty,
            counts=c["counts"],
            psi_edges=g["psi"] if g else empty,
            dtype=str(dtypes[name]),
        )
    rows = _rows(sk, features)
    profile = ReferenceProfile(features=feats, rows=rows, resolution=resolution, bins=bins)
    return profile, counted[1:]


def _rows(sk: dict[str, Any], features: list[str]) -> int:
    return int(sk[features[0]]["rows"]) if features else 0


def reference_profile(
    df: Any,
    features: Sequence[str] | None = None,
    *,
    bins: int = 10,
    resolution: int = 1000,
    max_categories: int = 100,
    sample: int = 200_000,
    seed: int = 0,
    client: Any = None,
    progress: bool | None = None,
) -> ReferenceProfile:
    """Compute the reference statistics drift checks need, once.

    Numeric features get quantile bin edges (``resolution`` fine bins for the KS test, ``bins``
    deciles-style bins for PSI) and the exact reference counts in them; categorical features
    (strings, booleans, categoricals) get their category counts. A dask DataFrame is scanned on
    the cluster in two passes (quantiles, then counts), each computing every feature together.

    Parameters
    ----------
    df : pandas.DataFrame or dask.dataframe.DataFrame
        The reference (training) data.
    features : list of str, optional
        Columns to profile; default all columns except ``_mlkit_*`` log columns and datetimes.
    bins : int
        Number of reference-quantile bins for PSI (10: deciles).
    resolution : int
        Number of fine reference-quantile bins on which the KS statistic is evaluated for data
        not held in memory; the KS statistic is exact at every bin edge.
    max_categories : int
        Categories kept per categorical feature (most frequent first); the rest are pooled.
    sample : int
        On dask, quantile edges are computed from at most this many values per partition
        (the counts in the bins are always exact). In-memory data uses every value.
    seed : int
        Seed of that sub-sampling.
    client : distributed.Client, optional
        Defaults to the mlkit cluster's client (dask input only).
    progress : bool, optional
        Show a progress bar (default: in a notebook, or when stderr is a terminal, once the
        work has run for 2 s).

    Returns
    -------
    ReferenceProfile

    Examples
    --------
    >>> import mlkit
    >>> prof = mlkit.monitor.reference_profile(train_ddf)    # doctest: +SKIP
    >>> with mlkit.track.run("train"):                       # doctest: +SKIP
    ...     prof.log()
    """
    _check_frame(df, "the reference")
    bins = _check_int("bins", bins, 2)
    resolution = _check_int("resolution", resolution, 2)
    max_categories = _check_int("max_categories", max_categories, 1)
    sample = _check_int("sample", sample, 100)
    names = check_features(df, features, "the reference")
    if not names:
        raise DataError("the reference has no column drift can test (numeric or categorical)")
    kinds = _scan.kinds_of(df, names)
    profile, _ = build(
        df, names, kinds, bins=bins, resolution=resolution, max_categories=max_categories,
        sample=sample, seed=seed, client=client, progress=progress,
    )
    return profile


_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def load_profile(source: Any, artifact_file: str = PROFILE_ARTIFACT) -> ReferenceProfile:
    """Load a reference profile from a file, an MLflow run, or a model logged in a run.

    Parameters
    ----------
    source : ReferenceProfile, path, run id or URI
        A JSON file written by :meth:`ReferenceProfile.save`; an MLflow run id; ``runs:/ID[/..]``;
        or a model URI (``models:/name/1``, ``models:/name@alias``, ``models:/m-...``) whose
        source run holds the profile logged by :meth:`ReferenceProfile.log`.

    Examples
    --------
    >>> prof = load_profile("runs:/0123456789abcdef0123456789abcdef")   # doctest: +SKIP
    >>> prof = load_profile("models:/churn/3")                          # doctest: +SKIP
    """
    if isinstance(source, ReferenceProfile):
        return source
    if isinstance(source, os.PathLike):
        return ReferenceProfile.load(source)
    if not isinstance(source, str) or not source:
        raise ConfigError(
            "a reference must be a DataFrame, a ReferenceProfile, a JSON path, an MLflow run id "
            f"or a runs:/ or models:/ URI, but got {source!r}"
        )
    if Path(source).expanduser().is_file() or source.endswith(".json"):
        return ReferenceProfile.load(Path(source).expanduser())
    run_id = _run_of(source)
    from mlkit._imports import require

    mlflow = require("mlflow")
    from mlkit import track

    track.configure()
    try:
        with _quiet_download():
            doc = mlflow.artifacts.load_dict(f"runs:/{run_id}/{artifact_file}")
    except Exception as exc:
        raise TrackingError(
            f"MLflow run {run_id} (from {source!r}) has no reference profile "
            f"{artifact_file!r}: log one with reference_profile(df).log() in that run ({exc})"
        ) from None
    return ReferenceProfile.from_dict(doc)


@contextlib.contextmanager
def _quiet_download() -> Any:
    """No MLflow download progress bar for one small JSON file (it would land in CLI output)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    old = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def _run_of(source: str) -> str:
    if _RUN_ID.match(source):
        return source
    if source.startswith("runs:/"):
        run_id = source[len("runs:/"):].split("/")[0]
        if _RUN_ID.match(run_id):
            return run_id
    if source.startswith("models:/") or source.startswith("runs:/"):
        from mlkit._imports import require

        mlflow = require("mlflow")
        from mlkit import track

        track.configure()
        try:
            info = mlflow.models.get_model_info(source)
        except Exception as exc:
            raise TrackingError(f"cannot resolve MLflow model {source!r}: {exc}") from None
        if not info.run_id:
            raise TrackingError(f"MLflow model {source!r} was not logged from a run")
        return str(info.run_id)
    raise ConfigError(
        f"reference {source!r} is neither an existing JSON file, an MLflow run id, nor a "
        "runs:/ or models:/ URI"
    )
