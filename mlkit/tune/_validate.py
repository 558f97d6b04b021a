"""Argument checks for :func:`mlkit.tune.tune`, run before anything touches a storage.

Every check raises one :class:`~mlkit.exceptions.TuneArgumentError` (an ``ArgumentError`` and a
``TuneError``) that states the rule, the value and what to do, in the manner of Optuna's own
validation messages (:mod:`mlkit._args`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

from mlkit import _args
from mlkit.exceptions import TuneArgumentError

__all__ = [
    "check_objective",
    "check_n_trials",
    "directions",
    "check_timeout",
    "check_concurrency",
    "check_catch",
    "check_on",
    "check_study_name",
    "check_retries",
]

_DIRECTIONS = ("minimize", "maximize")
# Study names become MLflow run names and parts of Dask keys: keep them printable and short.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_objective(objective: Any) -> Callable[..., Any]:
    """The objective must be a callable that accepts exactly one positional argument."""
    if not callable(objective):
        raise TuneArgumentError(
            f"objective must be a function taking one argument (the trial), but got "
            f"{type(objective).__name__} {_short(objective)}: define `def objective(trial): ...`"
        )
    try:
        sig = inspect.signature(objective)
    except (TypeError, ValueError):  # builtins and C callables without a signature: trust them
        return objective
    try:
        sig.bind(object())
    except TypeError as exc:
        name = getattr(objective, "__name__", type(objective).__name__)
        raise TuneArgumentError(
            f"objective {name}{sig} cannot be called as {name}(trial) ({exc}): it must take "
            "exactly one argument, the Optuna trial, e.g. `def objective(trial): ...`"
        ) from None
    return objective


def check_n_trials(n_trials: Any) -> int:
    return _args.positive_int("n_trials", n_trials, error=TuneArgumentError)


def directions(direction: Any) -> list[str]:
    """Normalise ``"minimize"`` / ``"maximize"`` / a list of them (or StudyDirection values)."""
    single = isinstance(direction, str) or not isinstance(direction, Sequence)
    items = [direction] if single else list(direction)
    if not items:
        raise TuneArgumentError(
            "direction must not be empty: use 'minimize', 'maximize' or a list of them"
        )
    out = []
    for d in items:
        name = getattr(d, "name", d)  # optuna.study.StudyDirection
        text = name.lower() if isinstance(name, str) else None
        if text not in _DIRECTIONS:
            raise TuneArgumentError(
                f"direction must be 'minimize' or 'maximize' (or a list of them for a "
                f"multi-objective study), but got {d!r}"
            )
        out.append(text)
    return out


def check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    return _args.positive_number("timeout", timeout, unit="seconds", error=TuneArgumentError,
                                 what_to_do="or None for no time limit")


def check_concurrency(concurrency: Any) -> int | None:
    if concurrency is None:
        return None
    return _args.positive_int("concurrency", concurrency, error=TuneArgumentError,
                              what_to_do="it counts trials running at once; None runs one per "
                              "worker thread")


def check_retries(retries: Any) -> int:
    return _args.non_negative_int("retries", retries, error=TuneArgumentError)


def check_catch(catch: Any) -> tuple[type[BaseException], ...]:
    items = catch if isinstance(catch, (tuple, list)) else (catch,)
    for c in items:
        if not (isinstance(c, type) and issubclass(c, BaseException)):
            raise TuneArgumentError(
                f"catch must be an exception class or a tuple of them (e.g. catch=(ValueError,)), "
                f"but got {catch!r}"
            )
    return tuple(items)


def check_on(on: Any) -> str:
    if on not in ("workers", "client"):
        raise TuneArgumentError(
            f"on must be 'workers' (each trial is one task on a worker) or 'client' (trials run "
            f"in threads here and may use the whole cluster), but got {on!r}"
        )
    return on


def check_study_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise TuneArgumentError(
            f"study_name must be 1-128 letters, digits, '_', '-' or '.', starting with a letter or "
            f"digit, but got {name!r}"
        )
    return name


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."
