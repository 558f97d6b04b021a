"""Progress of a training job: the shared progress state, drawn by :mod:`mlkit._display`.

The job's client loop feeds :meth:`Progress.update` with what the workers streamed back; the
bar only draws that state (a tqdm ipywidgets bar in a kernel, a text bar on stderr elsewhere).
When the job ends the notebook output is replaced by a static snapshot: the outcome ("stopped
early at round 72, best 62" is a success), the kept metrics and the metric history with the
best round marked, so a saved or papermill-written notebook keeps it.
"""

from __future__ import annotations

from typing import Any

from mlkit._display import ProgressBar, ProgressState

__all__ = ["Progress", "format_metrics", "early_stop_note"]


def format_metrics(metrics: dict[str, Any]) -> dict[str, str]:
    """Short, stable strings for a bar's postfix (4 significant digits)."""
    out = {}
    for key, value in metrics.items():
        out[key] = f"{value:.4g}" if isinstance(value, float) else str(value)
    return out


def early_stop_note(stopped_at: int, best: int, unit: str = "round") -> str:
    """The words for a run that early stopping ended.

    Examples
    --------
    >>> early_stop_note(72, 62)
    'stopped early at round 72, best 62'
    """
    return f"stopped early at {unit} {stopped_at}, best {best}"


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
    unit : str
        What one step is ("round", "epoch").

    Examples
    --------
    >>> p = Progress(10, "xgboost", enabled=False)
    >>> p.update(3, {"valid-auc": 0.98765})
    >>> p.position, p.metrics
    (3, {'valid-auc': 0.98765})
    >>> p.close("early", best=2); p.state.summary()
    'xgboost: stopped early at round 3, best 2 (3/10 rounds) | valid-auc=0.9877'
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        enabled: bool = True,
        initial: int = 0,
        unit: str = "round",
    ) -> None:
        self.state = ProgressState(desc, total=total, unit=unit, position=initial)
        self.view = ProgressBar(self.state, enabled=enabled, history=True)

    # the attributes callers and tests read
    @property
    def total(self) -> int | None:
        return self.state.total

    @property
    def position(self) -> int:
        return self.state.position

    @property
    def metrics(self) -> dict[str, Any]:
        return self.state.metrics

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def bar(self) -> Any:
        return self.view.bar

    def update(self, position: int | None, metrics: dict[str, Any]) -> None:
        """Move to ``position`` (None: stay) and show ``metrics``."""
        self.state.update(position, metrics)
        self.view.refresh()

    def close(self, status: str = "finished", *, best: int | None = None) -> None:
        """Finish: ``status`` is "finished", "early" (early stopping ended it: a success, with
        ``best`` the kept step, 1-based), "stopped" (interrupted) or "failed"."""
        note = ""
        if status == "early":
            best = best if best is not None else self.state.position
            note = early_stop_note(self.state.position, best, self.state.unit)
        self.view.close(status, note=note, best=best)

