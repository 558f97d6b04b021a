"""The state of a running study as the notebook sees it: what the widget and the text view draw.

The driver feeds finished trials in (:meth:`TuneProgress.record`); views read snapshots. Nothing
here talks to Dask or the storage, so the widget is testable headless by driving this object.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialRow", "TuneProgress", "TextProgress", "format_value"]


@dataclass(frozen=True)
class TrialRow:
    """One finished trial, as shown in the progress views."""

    number: int
    state: str  # COMPLETE / PRUNED / FAIL
    values: tuple[float, ...] | None
    params: dict[str, Any]
    worker: str = ""
    seconds: float = 0.0
    reason: str = ""

    @property
    def value(self) -> float | None:
        return self.values[0] if self.values else None


def format_value(v: float | None) -> str:
    """Short, stable text for an objective value.

    Examples
    --------
    >>> format_value(0.123456789), format_value(None), format_value(12345678.0)
    ('0.123457', '-', '1.23457e+07')
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.6g}"


@dataclass
class TuneProgress:
    """Trials done / total, best so far, history and top trials of one ``tune()`` call.

    Examples
    --------
    >>> p = TuneProgress("demo", total=3, directions=["minimize"])
    >>> p.record(TrialRow(0, "COMPLETE", (0.5,), {"x": 1}))
    >>> p.record(TrialRow(1, "COMPLETE", (0.2,), {"x": 2}))
    >>> p.done, p.best.number
    (2, 1)
    """

    study_name: str
    total: int
    directions: list[str]
    rows: list[TrialRow] = field(default_factory=list)
    done: int = 0  # trials that count towards n_trials (lost-and-retried ones do not)
    running: int = 0
    retried: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    message: str = ""
    ended: float | None = None  # when the study finished: the clock stops there

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    # -- feeding -------------------------------------------------------------------------------
    def record(self, row: TrialRow, counts: bool = True) -> None:
        """Add a finished trial; ``counts=False`` for a lost trial that will be re-run."""
        with self._lock:
            self.rows.append(row)
            if counts:
                self.done += 1
            else:
                self.retried += 1

    def finish(self) -> None:
        """The study is over: nothing runs any more and the clock stops."""
        with self._lock:
            self.finished = True
            self.running = 0
            if self.ended is None:
                self.ended = time.monotonic()

    # -- reading -------------------------------------------------------------------------------
    @property
    def multi(self) -> bool:
        return len(self.directions) > 1

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    def count(self, state: str) -> int:
        return sum(1 for r in self.rows if r.state == state)

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.directions[0] == "maximize" else a < b

    @property
    def best(self) -> TrialRow | None:
        """Best COMPLETE trial so far (single objective), else None."""
        if self.multi:
            return None
        best = None
        for r in self.rows:
            if r.state == "COMPLETE" and r.value is not None:
                if best is None or self._better(r.value, best.value):  # type: ignore[arg-type]
                    best = r
        return best

    def best_curve(self) -> list[tuple[int, float]]:
        """(trial number, best value up to it) for every COMPLETE trial, in trial order."""
        out: list[tuple[int, float]] = []
        cur: float | None = None
        for r in sorted(self.rows, key=lambda r: r.number):
            if r.state == "COMPLETE" and r.value is not None:
                if cur is None or self._better(r.value, cur):
                    cur = r.value
                out.append((r.number, cur))
        return out

    def points(self) -> list[tuple[int, float]]:
        """(trial number, first objective value) of every COMPLETE trial."""
        return sorted(
            (r.number, r.value) for r in self.rows if r.state == "COMPLETE" and r.value is not None
        )

    def top(self, k: int = 5) -> list[TrialRow]:
        """The ``k`` best COMPLETE trials (by the first objective)."""
        done = [(r.value, r) for r in self.rows if r.state == "COMPLETE" and r.value is not None]
        sign = -1.0 if self.directions[0] == "maximize" else 1.0
        return [r for _, r in sorted(done, key=lambda vr: (sign * vr[0], vr[1].number))][:k]

    def summary(self) -> str:
        """One line: done/total, states, best so far."""
        parts = [f"{self.study_name}: {self.done}/{self.total} trials"]
        states = [
            f"{self.count(s)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL") if self.count(s)
        ]
        if states:
            parts.append(", ".join(states))
        if self.running and not self.finished:
            parts.append(f"{self.running} running")
        best = self.best
        if best is not None:
            parts.append(f"best {format_value(best.value)} (trial {best.number})")
        if self.message:
            parts.append(self.message)
        return " | ".join(parts)

    def __str__(self) -> str:
        lines = [self.summary()]
        top = self.top(5)
        if top:
            lines.append("top trials:")
            for r in top:
                params = ", ".join(f"{k}={_short(v)}" for k, v in r.params.items())
                lines.append(f"  #{r.number:<4} {format_value(r.value):>12}  {params}")
        return "\n".join(lines)


def _short(v: Any) -> str:
    return format_value(v) if isinstance(v, float) else str(v)


class TextProgress:
    """Progress outside a kernel: a tqdm bar on stderr whose postfix shows the best value."""

    def __init__(self, progress: TuneProgress) -> None:
        from mlkit._imports import require

        tqdm = require("tqdm").tqdm
        self.progress = progress
        self.bar = tqdm(total=progress.total, desc=progress.study_name, unit="trial", leave=True)

    def update(self) -> None:
        p = self.progress
        self.bar.n = p.done
        best = p.best
        if best is not None:
            self.bar.set_postfix_str(
                f"best={format_value(best.value)} (#{best.number})", refresh=False
            )
        self.bar.refresh()

    def close(self) -> None:
        self.update()
        self.bar.close()
