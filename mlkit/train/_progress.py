"""Progress of a training job: a tqdm widget (ipywidgets) in a kernel, a text bar elsewhere.

The job's client loop feeds :meth:`Progress.update` with what the workers streamed back; the
bar only draws that state (tqdm.notebook is an ipywidgets widget, tqdm.std writes to stderr).
"""

from __future__ import annotations

import sys
from typing import Any

from mlkit.widgets import in_kernel

__all__ = ["Progress", "format_metrics"]


def format_metrics(metrics: dict[str, Any]) -> dict[str, str]:
    """Short, stable strings for a bar's postfix (4 significant digits)."""
    out = {}
    for key, value in metrics.items():
        out[key] = f"{value:.4g}" if isinstance(value, float) else str(value)
    return out


class Progress:
    """A progress bar for ``total`` steps (rounds or epochs) with the latest metrics beside it.

    Parameters
    ----------
    total : int or None
        Number of steps, if known.
    desc : str
        Label in front of the bar.
    enabled : bool
        False draws nothing (the state is still kept, e.g. for tests).

    Examples
    --------
    >>> p = Progress(10, "xgboost", enabled=False)
    >>> p.update(3, {"valid-auc": 0.98765})
    >>> p.position, p.metrics
    (3, {'valid-auc': 0.98765})
    """

    def __init__(self, total: int | None, desc: str, *, enabled: bool = True, initial: int = 0):
        self.total = total
        self.position = initial
        self.metrics: dict[str, Any] = {}
        self.status = "running"
        self.bar: Any = None
        if not enabled:
            return
        if in_kernel():
            from mlkit._imports import require

            require("ipywidgets")
            from tqdm.notebook import tqdm
        else:
            from tqdm.std import tqdm
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit="step",
            file=None if in_kernel() else sys.stderr,
            dynamic_ncols=True,
            leave=True,
        )

    def update(self, position: int | None, metrics: dict[str, Any]) -> None:
        """Move to ``position`` (None: stay) and show ``metrics``."""
        new = self.position if position is None else int(position)
        self.metrics = dict(metrics)
        if self.bar is not None:
            if new > self.position:
                self.bar.update(new - self.position)
            if metrics:
                self.bar.set_postfix(format_metrics(metrics), refresh=True)
        self.position = max(self.position, new)

    def close(self, status: str = "finished") -> None:
        """Finish the bar; ``status`` ("finished", "failed", "stopped") is shown in its label."""
        self.status = status
        if self.bar is None:
            return
        if status != "finished":
            self.bar.set_description_str(f"{self.bar.desc.rstrip(': ')} ({status})", refresh=False)
        self.bar.close()
