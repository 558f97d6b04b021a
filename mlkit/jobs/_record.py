"""``mlkit.jobs.record(name=value)``: values a notebook hands back to the job that ran it.

How the values travel: the job starts the kernel with ``MLKIT_JOB_RECORD`` set to a JSON file
path; :func:`record` merges its values into that file (write to a temp name, then rename, so the
job never reads half a file). After the notebook ends the job reads the file and logs the values
to MLflow. Outside a job (an interactive session) the values are only kept in memory, so the same
notebook runs unchanged in Jupyter.

This module is imported inside user kernels: it must stay light (json and os only).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from mlkit._fs import atomic_write
from mlkit.exceptions import JobError

__all__ = ["record", "recorded", "read_record_file", "RECORD_ENV"]

#: Environment variable naming the JSON file a job's kernel writes recorded values to.
RECORD_ENV = "MLKIT_JOB_RECORD"

# MLflow's rule for metric and param keys (alphanumerics, _ - . / and space, <= 250 chars).
_NAME = re.compile(r"^[\w\-./ ]{1,250}$")

_VALUES: dict[str, Any] = {}


def _to_json(obj: Any) -> Any:
    # numpy / pandas scalars and arrays are what notebooks compute with; they have .tolist().
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def record(**values: Any) -> None:
    """Record values for the job running this notebook (``mlkit run`` / ``mlkit.jobs.run``).

    Numbers become MLflow metrics, strings/booleans/None become params, and every value
    (nested lists and dicts too) comes back exactly in ``JobResult.recorded`` and in the run's
    ``record.json`` artifact. Calling it again with the same name replaces the value.

    Parameters
    ----------
    **values
        JSON-serialisable values (numbers, strings, booleans, None, lists, dicts; numpy
        scalars and arrays are converted with ``.tolist()``).

    Raises
    ------
    JobError
        If a name is not a valid MLflow key or a value is not JSON-serialisable; raised in the
        cell that called it, so the job fails at that cell.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.jobs.record(accuracy=0.93, classes=["cat", "dog"])
    >>> mlkit.jobs.recorded()["accuracy"]
    0.93
    """
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if not _NAME.match(name):
            raise JobError(
                f"record(): name {name!r} is not usable as an MLflow key: use letters, digits, "
                "_ - . / or spaces (at most 250 characters)"
            )
        try:
            clean[name] = json.loads(json.dumps(value, default=_to_json, allow_nan=True))
        except (TypeError, ValueError) as exc:
            raise JobError(
                f"record(): value of {name!r} ({type(value).__name__}) is not JSON-serialisable "
                f"({exc}); record numbers, strings, lists or dicts, and log models or files "
                "with MLflow instead"
            ) from None
    _VALUES.update(clean)
    path = os.environ.get(RECORD_ENV)
    if path:
        _merge_into(path, clean)


def _merge_into(path: str, values: dict[str, Any]) -> None:
    current = read_record_file(path)
    current.update(values)
    # 0600, as the file has always been: only the job's runner (the same user) reads it back
    atomic_write(path, json.dumps(current, allow_nan=True), mode=0o600)


def recorded() -> dict[str, Any]:
    """Values recorded so far in this process (a copy).

    Examples
    --------
    >>> import mlkit
    >>> mlkit.jobs.record(loss=0.25)
    >>> mlkit.jobs.recorded()["loss"]
    0.25
    """
    return json.loads(json.dumps(_VALUES, allow_nan=True))


def read_record_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the values a job's kernel recorded ({} when it recorded nothing).

    Examples
    --------
    >>> read_record_file("/nonexistent/record.json")
    {}
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}
