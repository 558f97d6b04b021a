"""Argument checks, one way for every package: the rule, the value, one error class.

Each check returns the value (as the type it promises) or raises with a message in one form,
optuna's: the argument, the rule and what was given, then what to do when that is not plain::

    replicas must be an integer in 1..64, but got replicas=0; pass None for one per worker

The error is an :class:`~mlkit.exceptions.ArgumentError`. A package passes its own subclass
(``error=TuneArgumentError``, which is both an ``ArgumentError`` and a ``TuneError``), so
``except TuneError`` and ``pytest.raises(TuneError)`` written before ArgumentError existed keep
working while ``except ArgumentError`` catches a bad argument from any package. The subclasses
are plain named classes in :mod:`mlkit.exceptions` rather than classes made on the fly from the
package's error: they pickle (a check may fail inside a Dask task and travel back), show their
name in a traceback, and the docs list them. In the magics, every one of them is an
``MlkitError`` and so becomes IPython's ``UsageError``.

Booleans are refused where a number is asked for (``True`` is an ``int`` in Python, never a
count a user meant); numpy's integers are accepted as integers.

Examples
--------
>>> positive_int("workers", 4)
4
>>> positive_int("workers", 0)
Traceback (most recent call last):
...
mlkit.exceptions.ArgumentError: workers must be a positive integer, but got workers=0
>>> from mlkit.exceptions import TuneArgumentError, TuneError
>>> try:
...     positive_int("n_trials", "ten", error=TuneArgumentError)
... except TuneError as exc:
...     print(exc)
n_trials must be a positive integer, but got n_trials='ten'
>>> one_of("base", "alpine", ["slim", "full"])
Traceback (most recent call last):
...
mlkit.exceptions.ArgumentError: base must be one of ['slim', 'full'], but got base='alpine'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, TypeVar

from mlkit.exceptions import ArgumentError

__all__ = [
    "fail",
    "integer",
    "positive_int",
    "non_negative_int",
    "int_in",
    "positive_number",
    "non_negative_number",
    "one_of",
]

T = TypeVar("T")


def fail(name: str, value: Any, rule: str, *, error: type[ArgumentError] = ArgumentError,
         what_to_do: str = "") -> ArgumentError:
    """The error for ``name=value`` breaking ``rule`` (to ``raise``), in the one message form.

    Examples
    --------
    >>> str(fail("port", 70000, "an integer in 0..65535", what_to_do="0 picks a free one"))
    'port must be an integer in 0..65535, but got port=70000; 0 picks a free one'
    """
    message = f"{name} must be {rule}, but got {name}={value!r}"
    return error(f"{message}; {what_to_do}" if what_to_do else message)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and not math.isnan(float(value)))


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None,
            rule: str | None = None, error: type[ArgumentError] = ArgumentError,
            what_to_do: str = "") -> int:
    """``value`` as an int when it is an integer within ``low..high`` (either end optional).

    Examples
    --------
    >>> integer("bins", 10, low=2)
    10
    >>> str(fail("bins", 1, "an integer >= 2"))
    'bins must be an integer >= 2, but got bins=1'
    """
    if rule is None:
        if low is not None and high is not None:
            rule = f"an integer in {low}..{high}"
        elif low is not None:
            rule = f"an integer >= {low}"
        elif high is not None:
            rule = f"an integer <= {high}"
        else:
            rule = "an integer"
    if not _is_int(value) or (low is not None and value < low) or (
            high is not None and value > high):
        raise fail(name, value, rule, error=error, what_to_do=what_to_do)
    return int(value)


def positive_int(name: str, value: Any, *, error: type[ArgumentError] = ArgumentError,
                 what_to_do: str = "") -> int:
    """``value`` when it is an integer >= 1 (a count of workers, trials, rows...).

    Examples
    --------
    >>> positive_int("rounds", 50)
    50
    """
    return integer(name, value, low=1, rule="a positive integer", error=error,
                   what_to_do=what_to_do)


def non_negative_int(name: str, value: Any, *, error: type[ArgumentError] = ArgumentError,
                     what_to_do: str = "") -> int:
    """``value`` when it is an integer >= 0 (retries, a seed...).

    Examples
    --------
    >>> non_negative_int("retries", 0)
    0
    """
    return integer(name, value, low=0, error=error, what_to_do=what_to_do)


def int_in(name: str, value: Any, low: int, high: int, *,
           error: type[ArgumentError] = ArgumentError, what_to_do: str = "") -> int:
    """``value`` when it is an integer in ``low..high`` (both included).

    Examples
    --------
    >>> int_in("port", 0, 0, 65535)
    0
    """
    return integer(name, value, low=low, high=high, error=error, what_to_do=what_to_do)


def positive_number(name: str, value: Any, *, unit: str = "", finite: bool = False,
                    error: type[ArgumentError] = ArgumentError, what_to_do: str = "") -> float:
    """``value`` as a float when it is a number > 0 (NaN refused; infinity too if ``finite``).

    ``unit`` names what it counts ("seconds") in the message.

    Examples
    --------
    >>> positive_number("timeout", 2, unit="seconds")
    2.0
    >>> str(fail("timeout", 0, "a positive number of seconds"))
    'timeout must be a positive number of seconds, but got timeout=0'
    """
    if not _is_number(value) or value <= 0 or (finite and math.isinf(value)):
        rule = f"a positive number of {unit}" if unit else "a positive number"
        raise fail(name, value, rule, error=error, what_to_do=what_to_do)
    return float(value)


def non_negative_number(name: str, value: Any, *, unit: str = "",
                        error: type[ArgumentError] = ArgumentError,
                        what_to_do: str = "") -> float:
    """``value`` as a float when it is a number >= 0 (NaN refused).

    Examples
    --------
    >>> non_negative_number("grace", 0, unit="seconds")
    0.0
    """
    if not _is_number(value) or value < 0:
        rule = f"a number of {unit} >= 0" if unit else "a number >= 0"
        raise fail(name, value, rule, error=error, what_to_do=what_to_do)
    return float(value)


def one_of(name: str, value: T, choices: Iterable[Any], *,
           error: type[ArgumentError] = ArgumentError, what_to_do: str = "") -> T:
    """``value`` when it is one of ``choices`` (listed in the message).

    Examples
    --------
    >>> one_of("base", "slim", ["slim", "full"])
    'slim'
    """
    options = list(choices)
    try:
        ok = value in options
    except (TypeError, ValueError):  # an array's truth value, an odd __eq__
        ok = False
    if not ok:
        raise fail(name, value, f"one of {options}", error=error, what_to_do=what_to_do)
    return value
