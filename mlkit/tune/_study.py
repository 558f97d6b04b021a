"""The study :func:`mlkit.tune.tune` returns: an ``optuna.Study`` with notebook manners.

It is a plain Optuna study (``isinstance(study, optuna.Study)``; ``best_params``,
``trials_dataframe()`` and Optuna's visualisations all work) that also knows its MLflow parent
run, displays as the tuning widget, and has the registry hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkit._imports import require
from mlkit.tune._progress import TrialRow, TuneProgress, format_value
from mlkit.tune._task import REASON_ATTR, WORKER_ATTR

# Engines are optional extras: require() names the extra to install when one is missing.
if TYPE_CHECKING:  # the checker reads the engines' own types
    import optuna
else:
    optuna = require("optuna")

__all__ = ["Study", "progress_from_trials", "row_from_trial"]


def row_from_trial(t: optuna.trial.FrozenTrial, worker: str = "", seconds: float = 0.0) -> TrialRow:
    return TrialRow(
        number=t.number,
        state=t.state.name,
        values=tuple(float(v) for v in t.values) if t.values is not None else None,
        params=dict(t.params),
        worker=worker or str(t.system_attrs.get(WORKER_ATTR, "")),
        seconds=seconds or (t.duration.total_seconds() if t.duration is not None else 0.0),
        reason=str(t.system_attrs.get(REASON_ATTR, "")),
    )


def progress_from_trials(study: optuna.Study) -> TuneProgress:
    """A finished-state progress view of every trial in ``study`` (for display later)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    p = TuneProgress(
        study.study_name, total=len(trials), directions=[d.name.lower() for d in study.directions]
    )
    for t in trials:
        p.record(row_from_trial(t))
    p.finish()
    return p


class Study(optuna.Study):
    """An Optuna study run across the cluster by :func:`mlkit.tune.tune`.

    Attributes
    ----------
    mlflow_run_id : str or None
        The study's parent MLflow run (None when tracking was off).
    progress : TuneProgress or None
        What the last ``tune()`` call did (trials, best so far, states).

    Examples
    --------
    >>> study = mlkit.tune.tune(objective, n_trials=20)    # doctest: +SKIP
    >>> study.best_params                                  # doctest: +SKIP
    >>> study.register_best("my-model")                    # doctest: +SKIP
    """

    mlflow_run_id: str | None = None
    progress: TuneProgress | None = None
    storage_description: str = ""

    def best_model_uri(self, trial: Any = None) -> str:
        """The model URI the best trial stored in ``user_attrs["model_uri"]``."""
        from mlkit.tune._tracking import best_model_uri

        return best_model_uri(self, trial)

    def best_model(self, trial: Any = None) -> Any:
        """Load the best trial's model (MLflow pyfunc). See :func:`mlkit.tune.best_model`."""
        from mlkit.tune._tracking import best_model

        return best_model(self, trial)

    def register_best(self, name: str, trial: Any = None, alias: str | None = "candidate") -> Any:
        """Register the best trial's model as ``name``. See :func:`mlkit.tune.register_best`."""
        from mlkit.tune._tracking import register_best

        return register_best(self, name, trial, alias)

    # -- display -------------------------------------------------------------------------------
    def _view(self) -> TuneProgress:
        return self.progress if self.progress is not None else progress_from_trials(self)

    def widget(self) -> Any:
        """The tuning widget (progress, best so far, objective plot, top trials)."""
        from mlkit._display import widget

        return widget(self._view())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # A finished study has nothing live to show: static HTML (summary, SVG plot, top
        # trials) and text, which every frontend and a saved notebook keep.
        from mlkit._display import static_bundle

        return static_bundle(self._view())

    def _repr_html_(self) -> str:
        from mlkit._display import static_bundle

        html: str = static_bundle(self._view())["text/html"]
        return html

    def __str__(self) -> str:
        return str(self._view())

    def __repr__(self) -> str:
        n = len(self.get_trials(deepcopy=False))
        best = ""
        if len(self.directions) == 1:
            try:
                best = f" best={format_value(self.best_value)}"
            except ValueError:
                pass
        return f"<mlkit.tune.Study {self.study_name!r} trials={n}{best}>"
