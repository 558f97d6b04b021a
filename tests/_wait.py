"""The one way a test waits: poll a condition until it holds, with a generous ceiling.

Tests prove a property ("the worker is back", "the log has a line"), never that something took
less than N seconds on a machine that may be busy. The ceiling only bounds a hang; when it is
reached the failure says what was awaited and the last value seen.

>>> wait_for(lambda: 3, what="three")
3
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# One default ceiling for the suite: long enough for a loaded 2-core CI machine.
DEFAULT_TIMEOUT = 120.0


class WaitTimeout(AssertionError):
    """The condition did not hold within the ceiling (an AssertionError, so pytest shows it)."""


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
    backoff: bool = True,
    what: str = "condition",
) -> T:
    """Call ``condition`` until it returns something truthy and return that value.

    Exceptions raised by ``condition`` count as "not yet" (a server still starting refuses
    connections); the last one is chained to the timeout error.

    Parameters
    ----------
    condition
        A callable polled repeatedly.
    timeout
        Ceiling in seconds; only reached when something hangs.
    interval
        First pause between polls; it doubles up to 1 s so a long wait does not spin.
    backoff
        ``False`` keeps polling every ``interval``: for catching a passing moment ("two trials
        running") rather than a state that stays.
    what
        Words for the failure message: ``"2 workers back"``.

    Examples
    --------
    >>> box = []
    >>> wait_for(lambda: box.append(1) or len(box) >= 3, what="three polls")
    True
    """
    deadline = time.monotonic() + timeout
    last_value: object = None
    last_error: BaseException | None = None
    pause = interval
    while True:
        try:
            last_value = condition()
            last_error = None
            if last_value:
                return last_value  # type: ignore[return-value]
        except Exception as exc:  # noqa: BLE001 - "not yet", reported if it never clears
            last_error = exc
        if time.monotonic() >= deadline:
            msg = f"waited {timeout:.0f} s for {what}; last value: {last_value!r}"
            raise WaitTimeout(msg) from last_error
        time.sleep(pause)
        if backoff:
            pause = min(pause * 2, 1.0)


def wait_until_false(
    condition: Callable[[], object], *, timeout: float = DEFAULT_TIMEOUT, what: str = "condition"
) -> None:
    """Poll until ``condition`` returns something falsy (e.g. "no tasks left on the scheduler")."""
    wait_for(lambda: not condition(), timeout=timeout, what=what)
