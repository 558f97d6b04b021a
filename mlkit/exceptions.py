"""One exception hierarchy for mlkit.

Every error a user can cause derives from :class:`MlkitError`, so the magics can turn it into
IPython's ``UsageError`` (one line, no traceback wall) and scripts can catch one type. Errors that
describe a failed remote execution carry structured fields, in the manner of papermill's
``PapermillExecutionError``.

A bad argument (``workers=0``, ``n_trials="ten"``) raises :class:`ArgumentError` in every
package. Each package's bad arguments raise a subclass that is also that package's error
(``TuneArgumentError`` is an ``ArgumentError`` and a ``TuneError``), so ``except TuneError``
written before ArgumentError existed still catches them. :mod:`mlkit._args` holds the checks.
"""

from __future__ import annotations

__all__ = [
    "MlkitError",
    "ArgumentError",
    "ConfigError",
    "ConfigArgumentError",
    "MissingDependencyError",
    "ClusterError",
    "NoClusterError",
    "GPUUnavailableError",
    "DataError",
    "DataArgumentError",
    "DataValidationError",
    "NoPredictionsError",
    "TrainingError",
    "TuneError",
    "TuneArgumentError",
    "TrackingError",
    "TrackingArgumentError",
    "ServeError",
    "ServeArgumentError",
    "JobError",
    "JobArgumentError",
    "JobExecutionError",
    "JobTimeoutError",
    "JobStoppedError",
    "ClientOnlyPathError",
]


class MlkitError(Exception):
    """Root of every error mlkit raises on purpose.

    The message states what happened, with the offending value, and what to do about it.
    """


class ArgumentError(MlkitError, ValueError):
    """A function was called with an argument value it cannot use.

    Raised before anything is started or written; the message names the argument, the rule and
    the value given (``workers must be a positive integer, but got workers=0``). Catch this one
    class for a bad argument in any package; each package raises its own subclass of it.
    """


class ConfigError(MlkitError, ValueError):
    """A setting or argument has a value mlkit cannot use."""


class ConfigArgumentError(ArgumentError, ConfigError):
    """A bad argument where mlkit has always raised ConfigError (cluster, train, data, monitor)."""


class MissingDependencyError(MlkitError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class ClusterError(MlkitError):
    """Starting, joining, scaling or stopping a cluster failed."""


class NoClusterError(ClusterError):
    """An operation needs a running cluster and there is none."""


class GPUUnavailableError(ClusterError):
    """GPUs were asked for but none (or not the requested ones) are visible."""


class DataError(MlkitError, ValueError):
    """Input data cannot be read or has the wrong shape."""


class DataArgumentError(ArgumentError, DataError):
    """A bad argument to a data function that has always raised DataError."""


class DataValidationError(DataError):
    """Data violates a schema. ``report`` holds the per-column findings."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class NoPredictionsError(DataError):
    """A served model's prediction log holds no prediction in the requested time window."""


class TrainingError(MlkitError):
    """Distributed training failed (a lost worker, a collective timeout, a crashed rank).

    Attributes
    ----------
    lost_workers : list of str
        Addresses of the workers that left the cluster during training (empty when none did).
    ranks : list of int
        The ranks that failed or whose worker was lost (empty when not known).
    step : int or None
        The last step reported before the failure (the boosting round for xgboost, the
        ``ctx.report`` step for torch); None when none was reported.
    checkpoint_dir : str or None
        Where the last checkpoint lies (continue from it with ``resume=True``); None without
        checkpoints.
    """

    def __init__(
        self,
        message: str,
        *,
        lost_workers: list[str] | None = None,
        ranks: list[int] | None = None,
        step: int | None = None,
        checkpoint_dir: str | None = None,
    ) -> None:
        super().__init__(message)
        self.lost_workers = list(lost_workers or [])
        self.ranks = list(ranks or [])
        self.step = step
        self.checkpoint_dir = checkpoint_dir


class TuneError(MlkitError):
    """A hyperparameter study could not start or continue."""


class TuneArgumentError(ArgumentError, TuneError):
    """A bad argument to ``mlkit.tune`` (``n_trials=0``...)."""


class TrackingError(MlkitError):
    """MLflow tracking or registry operation failed."""


class TrackingArgumentError(ArgumentError, TrackingError):
    """A bad argument to ``mlkit.track`` (``port=70000``...)."""


class ServeError(MlkitError):
    """A scoring server could not be started, reached or stopped."""


class ServeArgumentError(ArgumentError, ServeError):
    """A bad argument to ``mlkit.serve`` (``replicas=0``...)."""


class JobError(MlkitError):
    """A notebook job could not be started (bad notebook, bad parameters)."""


class JobArgumentError(ArgumentError, JobError):
    """A bad argument to ``mlkit.jobs`` (``timeout=-1``...)."""


class JobExecutionError(JobError):
    """A notebook job ran and failed.

    Attributes
    ----------
    cell_index : int or None
        Index of the failing cell in the executed notebook.
    ename, evalue : str
        Exception name and value raised in the kernel.
    output_path : str or None
        Where the executed notebook (with the error) was written.
    """

    def __init__(
        self,
        message: str,
        *,
        cell_index: int | None = None,
        ename: str = "",
        evalue: str = "",
        output_path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.cell_index = cell_index
        self.ename = ename
        self.evalue = evalue
        self.output_path = output_path


class JobTimeoutError(JobExecutionError):
    """A notebook job ran past its job or cell timeout and was stopped (``cell_index`` says
    where)."""


class JobStoppedError(JobExecutionError):
    """A notebook ended itself early with ``sys.exit()``: reported, never taken for success."""


class ClientOnlyPathError(ConfigError, DataError):
    """A path only the client's disk holds was handed to workers on other hosts.

    Raised up front, before anything is written. ``path`` is the offending path; the message names
    the ways out (an object-store URL, a shared mount, ``MLKIT_STORE``).
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path
