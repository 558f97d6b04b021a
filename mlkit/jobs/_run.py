"""``mlkit.jobs.run``: execute one notebook with papermill and record it as an MLflow run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlkit import _args
from mlkit._display import wants_progress
from mlkit.exceptions import (
    JobArgumentError,
    JobError,
    JobExecutionError,
    JobStoppedError,
    JobTimeoutError,
)
from mlkit.jobs._execute import JobOutcome, JobSpec, default_cwd, execute, kernel_env, prepare
from mlkit.jobs._outputs import job_output
from mlkit.jobs._params import load_params_file

__all__ = ["run", "JobResult", "EXIT_CODES", "check_timeout", "merge_parameters"]

#: Exit codes of ``mlkit run`` (documented for cron and CI). 2 is a usage error: bad options,
#: a missing notebook, a bad parameter name; nothing ran.
EXIT_CODES = {"ok": 0, "failed": 1, "stopped": 3, "timeout": 4, "cancelled": 130}


@dataclass
class JobResult:
    """What one notebook job did.

    Attributes
    ----------
    status : {"ok", "failed", "timeout", "stopped", "cancelled"}
    notebook, output : str
        Input notebook and the executed notebook (also the run's artifact).
    parameters, recorded : dict
        Values injected, and values the notebook recorded with ``mlkit.jobs.record``.
    run_id, experiment : str
        The MLflow run that holds it all.
    cell_index, exec_count, ename, evalue
        Where and why it failed (``cell_index`` counts the executed notebook's cells from 0,
        the injected-parameters cell included; ``exec_count`` is the ``In [N]`` shown there).
    """

    status: str
    notebook: str
    output: str | None
    parameters: dict[str, Any]
    recorded: dict[str, Any]
    duration_s: float
    run_id: str | None = None
    experiment: str | None = None
    cell_index: int | None = None
    exec_count: int | None = None
    ename: str = ""
    evalue: str = ""
    _summary: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def exit_code(self) -> int:
        """The exit code ``mlkit run`` uses for this status."""
        return EXIT_CODES[self.status]

    def summary(self) -> str:
        """One line: status, where it failed and why, the output notebook and the run id."""
        head = "OK" if self.ok else self._summary
        return (
            f"{head} in {self.duration_s:.1f} s; output: {self.output}; "
            f"MLflow run {self.run_id} (experiment {self.experiment})"
        )

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        lines = [f"JobResult: {self.status}" + ("" if self.ok else f" ({self._summary})")]
        for label, value in [
            ("notebook", self.notebook), ("output", self.output),
            ("parameters", self.parameters), ("recorded", self.recorded),
            ("duration", f"{self.duration_s:.1f} s"),
            ("MLflow run", f"{self.run_id} (experiment {self.experiment})"),
        ]:
            lines.append(f"  {label + ':':<12}{value}")
        p.text("\n".join(lines))

    @classmethod
    def from_outcome(
        cls, outcome: JobOutcome, notebook: str, parameters: dict[str, Any], **kw: Any
    ) -> JobResult:
        return cls(
            status=outcome.status,
            notebook=notebook,
            output=outcome.output,
            parameters=parameters,
            recorded=outcome.recorded,
            duration_s=outcome.duration_s,
            cell_index=outcome.cell_index,
            exec_count=outcome.exec_count,
            ename=outcome.ename,
            evalue=outcome.evalue,
            _summary=outcome.summary(),
            **kw,
        )

    def error(self) -> JobExecutionError | None:
        """The exception that stands for this result (None when it succeeded)."""
        if self.ok or self.status == "cancelled":
            return None
        cls = {"timeout": JobTimeoutError, "stopped": JobStoppedError}.get(
            self.status, JobExecutionError
        )
        exc = cls(
            f"{os.path.basename(self.notebook)}: {self.summary()}",
            cell_index=self.cell_index,
            ename=self.ename,
            evalue=self.evalue,
            output_path=self.output,
        )
        exc.result = self  # type: ignore[attr-defined]
        return exc


def check_timeout(value: float | None, name: str) -> float | None:
    """None or a positive number of seconds; anything else is a :class:`JobError`."""
    if value is None:
        return None
    return _args.positive_number(name, value, unit="seconds", finite=True,
                                 error=JobArgumentError, what_to_do="or None for no limit")


def merge_parameters(
    parameters: Mapping[str, Any] | None, params_file: str | os.PathLike[str] | None
) -> dict[str, Any]:
    """File values first, explicit ones override (papermill's order for -f then -p)."""
    merged: dict[str, Any] = dict(load_params_file(params_file)) if params_file else {}
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise JobError(f"parameters must be a dict of name -> value, but got {parameters!r}")
        merged.update(parameters)
    return merged


def run(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    params_file: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    experiment: str | None = None,
    name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    log_output: bool = False,
    raise_on_error: bool = True,
) -> JobResult:
    """Execute a notebook with papermill and record it as an MLflow run.

    Everything is checked before the kernel starts: the notebook is readable, the kernel is
    installed, every parameter name is an identifier (not a keyword) declared in the cell tagged
    ``parameters``, every value is made of JSON types. Values round-trip exactly.

    The MLflow run (in ``experiment``, default ``"mlkit-jobs"``) gets the parameters, lineage
    tags from :mod:`mlkit.track`, the status, ``job_duration_s``, the values the notebook
    recorded with :func:`mlkit.jobs.record` (numbers as metrics, other scalars as params, all of
    them in ``record.json``) and the executed notebook as an artifact. It ends FINISHED (ok),
    FAILED (an error, a dead kernel, a timeout) or KILLED (``sys.exit()``, an interrupt): never
    RUNNING.

    Parameters
    ----------
    notebook : path
        The notebook to run.
    parameters : dict, optional
        Values injected after the cell tagged ``parameters`` (they override ``params_file``).
    params_file : path, optional
        YAML (or JSON) file of parameters, like ``papermill -f``.
    output : path, optional
        Executed notebook (or a folder for it); default ``<mlkit home>/jobs/<name>-<time>.ipynb``.
        It is written even when the notebook fails, with the error in place.
    kernel : str, optional
        Kernel name; default the notebook's kernelspec, else ``"python3"``.
    timeout, cell_timeout : float, optional
        Seconds the job's cells may take in all (from the first cell: the kernel's start is
        bounded on its own, as in papermill) / any one cell may take; past it the kernel is
        interrupted (then killed) and the job ends with status "timeout".
    experiment : str, optional
        MLflow experiment (default ``"mlkit-jobs"``).
    name : str, optional
        MLflow run name (default: the notebook's file name without ``.ipynb``).
    cwd : path, optional
        Working directory of the kernel (default: the notebook's folder, as in Jupyter).
    progress : bool, optional
        Papermill's cell progress bar (default: in a kernel or an interactive terminal).
    log_output : bool
        Stream the notebook's output to this process's log (papermill's ``--log-output``).
    raise_on_error : bool
        Raise :class:`~mlkit.exceptions.JobExecutionError` (or its subclasses
        ``JobTimeoutError``, ``JobStoppedError``) when the job does not succeed; the exception's
        ``.result`` is the :class:`JobResult`. With False, return the result whatever happened.

    Returns
    -------
    JobResult

    Raises
    ------
    JobError
        Bad input, before anything runs (nothing written, no MLflow run).
    JobExecutionError
        The notebook failed (``cell_index``, ``ename``, ``evalue``, ``output_path``).
    KeyboardInterrupt
        After recording the run as KILLED and stopping the kernel.

    Examples
    --------
    >>> import mlkit
    >>> r = mlkit.jobs.run("train.ipynb", {"lr": 0.1}, timeout=600)   # doctest: +SKIP
    >>> r.status, r.recorded["accuracy"]                               # doctest: +SKIP
    ('ok', 0.93)
    """
    from mlkit import track
    from mlkit.jobs._tracking import DEFAULT_EXPERIMENT, job_tags, log_outcome, set_final_status

    timeout = check_timeout(timeout, "timeout")
    cell_timeout = check_timeout(cell_timeout, "cell_timeout")
    path, kernel_name, params = prepare(notebook, merge_parameters(parameters, params_file), kernel)
    out = job_output(path, output)
    spec = JobSpec(
        notebook=str(path),
        output=str(out),
        kernel=kernel_name,
        cwd=str(cwd) if cwd is not None else default_cwd(path),
        parameters=params,
        timeout=timeout,
        cell_timeout=cell_timeout,
        env=kernel_env(),
        progress=wants_progress(progress),
        log_output=log_output,
    )
    experiment = experiment or DEFAULT_EXPERIMENT
    import mlflow

    tags = job_tags("run", spec.notebook, spec.output, kernel_name)
    with track.run(name or path.stem, experiment=experiment, tags=tags) as active:
        run_id = active.info.run_id
        client = mlflow.MlflowClient(track.tracking_uri())
        _log_params(client, run_id, params)
        outcome = execute(spec)
        log_outcome(client, run_id, outcome, params)
    set_final_status(client, run_id, outcome.status)
    result = JobResult.from_outcome(
        outcome, spec.notebook, params, run_id=run_id, experiment=experiment
    )
    if outcome.interrupted:
        raise KeyboardInterrupt
    if raise_on_error:
        error = result.error()
        if error is not None:
            raise error
    return result


def _log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    from mlkit.track._writer import RunWriter

    writer = RunWriter(run_id, client=client)
    writer.params(params)
    writer.flush()
