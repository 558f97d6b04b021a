"""Reading the prediction logs that mlkit-served models write, and where references live.

The log format is shared with :mod:`mlkit.serve`: folder ``<mlkit home>/predictions/<name>/``,
append-only files ``part-<time_ns>-<pid>.parquet`` (written under a hidden temporary name and
renamed), columns = the request's raw inputs, ``prediction`` (or ``prediction_0..k``),
``_mlkit_time`` (``datetime64[ns, UTC]``) and ``_mlkit_request_id`` (str).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any

from mlkit import config
from mlkit.exceptions import ConfigError, DataError, NoPredictionsError

__all__ = [
    "TIME_COLUMN",
    "parse_duration",
    "prediction_log_dir",
    "predictions",
    "register_reference",
    "reference_for",
]

TIME_COLUMN = "_mlkit_time"
_ROWS_PER_PARTITION = 100_000  # a prediction-log window read on the client, for remote workers
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# pandas.Timedelta would parse most of these, but warns on "d"/"w" (deprecated spellings) and
# accepts forms like "1 days 02:00"; a strict "<number><unit>" grammar makes errors clearer.
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")
_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}


def parse_duration(value: Any, what: str = "duration") -> _dt.timedelta:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"2d"``, ``"1w"``, a number of seconds or a timedelta.

    Examples
    --------
    >>> parse_duration("1h")
    datetime.timedelta(seconds=3600)
    >>> parse_duration("1.5m").total_seconds()
    90.0
    """
    if isinstance(value, _dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)) and m.group(2).lower() in _UNITS:
        seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        raise ConfigError(
            f"{what} must look like '90s', '15m', '1h', '2d' or '1w' (or be a number of "
            f"seconds), but got {value!r}"
        )
    if not seconds > 0:
        raise ConfigError(f"{what} must be positive, but got {value!r}")
    return _dt.timedelta(seconds=seconds)


def _check_name(name: Any) -> str:
    name = getattr(name, "name", name)  # a served-model handle has .name
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"a served model's name must be letters, digits, '.', '_' or '-', but got {name!r}"
        )
    return name


def prediction_log_dir(name: Any) -> Path:
    """The folder where the server called ``name`` logs its predictions (not created).

    Examples
    --------
    >>> prediction_log_dir("churn").parts[-2:]
    ('predictions', 'churn')
    """
    return config.home_path() / "predictions" / _check_name(name)


def _as_utc(value: Any, what: str) -> Any:
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{what} must be a duration or a date/time, but got {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _window_start(since: Any, now: Any) -> Any:
    if since is None:
        return None
    if isinstance(since, _dt.datetime) or (
        isinstance(since, str) and not _DURATION.match(since)
    ):
        return _as_utc(since, "since")
    return now - parse_duration(since, "since")


def predictions(
    name: Any,
    since: Any = "1h",
    until: Any = None,
    *,
    columns: list[str] | None = None,
) -> Any:
    """The prediction log of a served model, as a dask DataFrame, for a time window.

    Parameters
    ----------
    name : str or served-model handle
        The server's name (``mlkit.serve.start(..., log_predictions=True)``).
    since : str, timedelta, datetime or None
        Start of the window: a duration back from now (``"1h"``, ``"30m"``, ``"7d"``), an
        absolute time (naive times are UTC), or None for the whole log.
    until : datetime or str, optional
        End of the window (exclusive); default now.
    columns : list of str, optional
        Columns to read (``_mlkit_time`` is always read).

    Raises
    ------
    NoPredictionsError
        The log folder is missing or holds no request in the window.

    Notes
    -----
    The log lives on the client's disk (where the server runs). On a cluster whose workers do
    not share that disk (one joined with ``connect``), the window is read on the client and
    handed to the workers with the graph: keep ``since`` to what fits in the client's memory.

    Examples
    --------
    >>> live = mlkit.monitor.predictions("churn", since="1h")       # doctest: +SKIP
    >>> mlkit.monitor.drift(reference, live).drifted                 # doctest: +SKIP
    """
    import pandas as pd
    import pyarrow.dataset as pads

    from mlkit._imports import require

    dd = require("dask.dataframe")
    folder = prediction_log_dir(name)
    now = pd.Timestamp.now(tz="UTC")
    start = _window_start(since, now)
    end = _as_utc(until, "until") if until is not None else None
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"until ({end}) must be after since ({start})")
    files = sorted(str(p) for p in folder.glob("part-*.parquet")) if folder.is_dir() else []
    if not files:
        raise NoPredictionsError(
            f"no prediction log for {folder.name!r} in {folder}: serve the model with "
            "mlkit.serve.start(..., log_predictions=True) and send it requests"
        )
    filters: list[tuple[str, str, Any]] = []
    if start is not None:
        filters.append((TIME_COLUMN, ">=", start))
    if end is not None:
        filters.append((TIME_COLUMN, "<", end))
    # Counting the window's rows reads only the time column (and skips row groups by their
    # statistics), so an empty window is reported before any real work is planned.
    expr = None
    for col, op, val in filters:
        term = pads.field(col) >= val if op == ">=" else pads.field(col) < val
        expr = term if expr is None else expr & term
    try:
        n = pads.dataset(files, format="parquet").count_rows(filter=expr)
    except Exception as exc:
        raise DataError(f"cannot read the prediction log in {folder}: {exc}") from None
    if n == 0:
        window = f"since {start}" if start is not None else "at all"
        raise NoPredictionsError(f"no prediction logged for {folder.name!r} {window}")
    cols = None
    if columns is not None:
        cols = list(dict.fromkeys([*columns, TIME_COLUMN]))
    from mlkit.cluster._preflight import is_remote

    if is_remote():
        # The log is on the client's disk (the server runs here): workers on other hosts
        # cannot read these files, so the window is read here and its rows travel with the
        # graph, never a lazy frame that fails on a worker.
        try:
            table = pads.dataset(files, format="parquet").to_table(columns=cols, filter=expr)
        except Exception as exc:
            raise DataError(f"cannot read the prediction log in {folder}: {exc}") from None
        frame = table.to_pandas()
        return dd.from_pandas(frame, npartitions=min(len(files), 1 + n // _ROWS_PER_PARTITION),
                              sort=False)
    return dd.read_parquet(files, columns=cols, filters=filters or None)


# -- references stored for served models (used by `mlkit monitor NAME` without --reference) --
def _reference_path(name: Any) -> Path:
    return config.home_path() / "monitor" / "references" / f"{_check_name(name)}.json"


def register_reference(name: Any, reference: Any) -> Path:
    """Make ``reference`` the default reference of the served model ``name``.

    ``mlkit monitor NAME`` and :func:`watch` use it when no reference is given.

    Parameters
    ----------
    name : str or served-model handle
    reference : ReferenceProfile, DataFrame, JSON path or MLflow URI
        A DataFrame is profiled first (:func:`reference_profile`).

    Examples
    --------
    >>> mlkit.monitor.register_reference("churn", "models:/churn/3")   # doctest: +SKIP
    """
    from mlkit.monitor._profile import ReferenceProfile, load_profile, reference_profile

    path = _reference_path(name)
    if isinstance(reference, ReferenceProfile):
        profile = reference
    elif isinstance(reference, str | os.PathLike):
        profile = load_profile(reference)
    else:
        profile = reference_profile(reference)
    return profile.save(path)


def reference_for(name: Any) -> Any:
    """The reference registered for ``name`` with :func:`register_reference`."""
    from mlkit.monitor._profile import ReferenceProfile

    path = _reference_path(name)
    if not path.is_file():
        raise DataError(
            f"no reference registered for {_check_name(name)!r}: pass one (a JSON profile, a "
            "run id or a runs:/ or models:/ URI) or call "
            f"mlkit.monitor.register_reference({_check_name(name)!r}, train_df)"
        )
    return ReferenceProfile.load(path)
