"""Execute one notebook with papermill and say exactly how it ended.

This module knows nothing of MLflow: :func:`execute` runs wherever it is called (the client for
``mlkit run``, a Dask worker for a sweep) and returns a small picklable :class:`JobOutcome`. The
caller records it. Everything the worker needs travels inside :class:`JobSpec` (paths, the
kernel's environment), because worker processes do not see the client's environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlkit._fs import atomic_write
from mlkit.exceptions import JobError
from mlkit.jobs._params import validate_parameters
from mlkit.jobs._record import RECORD_ENV, read_record_file

__all__ = ["JobSpec", "JobOutcome", "STATUSES", "prepare", "execute", "resolve_kernel"]

#: How a job can end. "stopped" is ``sys.exit()`` inside the notebook (an early stop, not a
#: success); "timeout" covers the job and cell timeouts; "cancelled" an interrupt from outside.
STATUSES = ("ok", "failed", "timeout", "stopped", "cancelled")

DEFAULT_KERNEL = "python3"


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to execute one notebook, with explicit absolute paths."""

    notebook: str
    output: str
    kernel: str
    cwd: str
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    cell_timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    progress: bool = False
    log_output: bool = False
    start_timeout: float = 60.0


@dataclass
class JobOutcome:
    """How one execution ended. ``cell_index`` counts cells of the executed notebook from 0
    (the injected-parameters cell included), as papermill's ``PapermillExecutionError`` does;
    ``exec_count`` is the ``In [N]`` number shown in the output notebook."""

    status: str
    output: str | None
    duration_s: float
    started_at: float
    recorded: dict[str, Any] = field(default_factory=dict)
    cell_index: int | None = None
    exec_count: int | None = None
    ename: str = ""
    evalue: str = ""
    kernel_log: str = ""  # the kernel process's own output (tail), kept for failed jobs
    interrupted: bool = False  # a KeyboardInterrupt reached the caller's thread

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        """One line: where and why the job did not succeed ('' when it did)."""
        if self.ok:
            return ""
        where = ""
        if self.cell_index is not None:
            where = f" at cell {self.cell_index}"
            if self.exec_count is not None:
                where += f" (In [{self.exec_count}])"
        what = f"{self.ename}: {self.evalue}" if self.evalue else self.ename
        label = {
            "failed": "FAILED",
            "timeout": "TIMED OUT",
            "stopped": "STOPPED EARLY",
            "cancelled": "CANCELLED",
        }.get(self.status, self.status.upper())
        return f"{label}{where}: {_one_line(what)}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- client side: validate before anything runs ----------------------------------------------
def _installed_kernels() -> dict[str, str]:
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager().find_kernel_specs()


def resolve_kernel(nb: Any, kernel: str | None) -> str:
    """The kernel to use: ``kernel``, else the notebook's kernelspec, else ``python3``.

    Raises :class:`JobError` when that kernel is not installed.
    """
    name = kernel or (nb.metadata.get("kernelspec") or {}).get("name") or DEFAULT_KERNEL
    installed = _installed_kernels()
    if name not in installed:
        raise JobError(
            f"kernel {name!r} is not installed here (installed: {', '.join(sorted(installed))}); "
            "pass --kernel NAME (kernel=...) or install one with "
            "`python -m ipykernel install --sys-prefix`"
        )
    return name


def _declared_parameters(nb: Any, kernel: str) -> list[str] | None:
    """Names in the cell tagged ``parameters`` ([] when there is none; None when the language
    cannot be inspected)."""
    from papermill.translators import papermill_translators

    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return []
    language = (nb.metadata.get("kernelspec") or {}).get("language") or (
        nb.metadata.get("language_info") or {}
    ).get("name", "python")
    try:
        translator = papermill_translators.find_translator(kernel, language)
        return [p.name for p in translator.inspect(cells[0])]
    except Exception:  # NotImplementedError for languages papermill cannot inspect, parse errors
        return None


def read_notebook(notebook: str | os.PathLike[str]) -> tuple[Path, Any]:
    """Absolute path and parsed notebook, or one :class:`JobError` saying what is wrong."""
    import nbformat

    path = Path(notebook).expanduser()
    if not path.is_file():
        raise JobError(f"notebook {str(notebook)!r} does not exist (looked in {path.resolve()})")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise JobError(f"{str(notebook)!r} is not a readable notebook: {exc}") from None
    return path.resolve(), nb


def prepare(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None,
    kernel: str | None,
    *,
    extra_names: list[str] | None = None,
) -> tuple[Path, str, dict[str, Any]]:
    """Validate a job before it runs: notebook readable, kernel installed, parameters declared.

    ``extra_names`` are swept names that must be declared too. Returns (path, kernel, params).
    """
    path, nb = read_notebook(notebook)
    name = resolve_kernel(nb, kernel)
    declared = _declared_parameters(nb, name)
    wanted = [*(parameters or {}), *(extra_names or [])]
    if wanted and declared == []:
        raise JobError(
            f"{path.name} has no cell tagged 'parameters', so {', '.join(map(repr, wanted))} "
            "would be injected at the top and could be overwritten: tag the cell that sets the "
            "defaults with 'parameters' (View > Cell Toolbar > Tags in Jupyter)"
        )
    params = validate_parameters(parameters, declared)
    if extra_names:
        validate_parameters(dict.fromkeys(extra_names), declared)
    return path, name, params


def default_cwd(notebook: Path) -> str:
    """Jobs run in the notebook's folder, as Jupyter runs an open notebook (relative paths in
    the notebook then mean the same thing under cron as in Jupyter)."""
    return str(notebook.parent)


def kernel_env(home: str | None = None) -> dict[str, str]:
    """The client's settings a kernel must see, passed explicitly (workers have stale env)."""
    from mlkit import config

    env = {"MLKIT_HOME": str(home or config.home_path()), "MLKIT_JOB": "1"}
    for name in ("MLFLOW_TRACKING_URI", "MLKIT_HOST", "MLKIT_STORE", "MLKIT_STORE_OPTIONS"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


# -- anywhere: execute ------------------------------------------------------------------------
def execute(
    spec: JobSpec, should_stop: Callable[[], bool] | None = None, *, stop_event: Any = None
) -> JobOutcome:
    """Run ``spec`` with papermill; never raises for a failing notebook.

    The output notebook is written next to ``spec.output`` under a temporary name while it runs
    (papermill saves after every cell) and renamed into place at the end, whatever the outcome,
    with ``metadata.mlkit`` holding the status, parameters and recorded values.

    Examples
    --------
    >>> spec = JobSpec("in.ipynb", "out.ipynb", "python3", ".")   # doctest: +SKIP
    >>> execute(spec).status                                       # doctest: +SKIP
    'ok'
    """
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from mlkit.jobs._watch import Watch, kernel_manager_class

    started_at, t0 = time.time(), time.monotonic()
    out = Path(spec.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.partial.ipynb")
    workdir = tempfile.mkdtemp(prefix="mlkit-job-")
    record_path = os.path.join(workdir, "record.json")
    log_path = os.path.join(workdir, "kernel.log")
    watch = Watch(
        {**spec.env, RECORD_ENV: record_path},
        timeout=spec.timeout,
        cell_timeout=spec.cell_timeout,
        should_stop=should_stop,
        stop_event=stop_event,
        log_path=log_path,
    )
    _quiet_papermill(spec.log_output)
    outcome = JobOutcome(status="ok", output=str(out), duration_s=0.0, started_at=started_at)
    cells = _JobCells(spec) if spec.progress else None
    try:
        watch.start()
        papermill.execute_notebook(
            spec.notebook,
            str(partial),
            parameters=spec.parameters or None,
            kernel_name=spec.kernel,
            # in a kernel mlkit draws the bar itself (it ends static); papermill's elsewhere
            progress_bar=spec.progress and cells is not None and cells.bar is None,
            log_output=spec.log_output,
            start_timeout=spec.start_timeout,
            # engine keyword arguments, handed by papermill to nbclient's NotebookClient:
            kernel_manager_class=kernel_manager_class(watch),
            on_cell_execute=watch.on_cell_execute,
            on_cell_executed=cells.executed if cells is not None and cells.bar else None,
            resources={"metadata": {"path": spec.cwd}},  # the kernel's cwd, without chdir here
        )
    except PapermillExecutionError as exc:
        outcome.cell_index, outcome.exec_count = exc.cell_index, exc.exec_count
        outcome.ename, outcome.evalue = exc.ename, exc.evalue
        outcome.status = "stopped" if exc.ename == "SystemExit" else "failed"
    except DeadKernelError:
        outcome.status = "failed"
        outcome.cell_index = watch.cell_index
        outcome.ename = "DeadKernelError"
        outcome.evalue = "the kernel died" + (
            f" while running cell {watch.cell_index}" if watch.cell_index is not None else ""
        ) + " (killed, out of memory, os._exit or a crash in native code)"
    except KeyboardInterrupt:
        outcome.interrupted = True
        outcome.status, outcome.cell_index = "cancelled", watch.cell_index
        outcome.ename, outcome.evalue = "KeyboardInterrupt", "interrupted by the user"
    except Exception as exc:  # kernel failed to start, papermill I/O error ...
        outcome.status = "failed"
        outcome.cell_index = watch.cell_index
        outcome.ename, outcome.evalue = type(exc).__name__, _one_line(str(exc))
    finally:
        watch.stop()
    if watch.reason is not None:
        outcome.status = "cancelled" if watch.reason == "cancelled" else "timeout"
        outcome.ename = "JobCancelled" if watch.reason == "cancelled" else "JobTimeout"
        outcome.evalue = watch.describe() + (
            f" (stopped in cell {watch.cell_index})" if watch.cell_index is not None else ""
        )
        outcome.cell_index = watch.cell_index
    outcome.recorded = read_record_file(record_path)
    outcome.kernel_log = _tail(log_path)
    shutil.rmtree(workdir, ignore_errors=True)
    outcome.duration_s = time.monotonic() - t0
    if cells is not None:
        cells.close(outcome)
    try:
        _finalise(partial, out, spec, outcome)
    except Exception:
        outcome.output = str(partial) if partial.exists() else None
    return outcome


class _JobCells:
    """The job's cell progress in a notebook: mlkit's bar (a tqdm widget in a slot that ends as
    a static line: job status, cells run), fed by nbclient's ``on_cell_executed`` hook.
    Outside a kernel ``bar`` is None and papermill draws its own text bar."""

    _END = {"ok": "finished", "stopped": "stopped", "cancelled": "stopped"}

    def __init__(self, spec: JobSpec) -> None:
        from mlkit._display import ProgressBar, ProgressState, can_draw_widgets

        self.bar: Any = None
        if not can_draw_widgets():
            return
        import nbformat

        try:
            nb = nbformat.read(spec.notebook, as_version=4)
            total = sum(c.cell_type == "code" for c in nb.cells) + (1 if spec.parameters else 0)
        except Exception:  # papermill reports an unreadable notebook itself
            total = None
        self.state = ProgressState(f"job {Path(spec.notebook).stem}", total=total, unit="cell")
        self.bar = ProgressBar(self.state)

    def executed(self, **_: Any) -> None:
        self.state.update(self.state.position + 1)
        self.bar.refresh()

    def close(self, outcome: JobOutcome) -> None:
        if self.bar is None:
            return
        status = self._END.get(outcome.status, "failed")
        self.bar.close(status, note="" if outcome.ok else outcome.summary())


def _tail(path: str, limit: int = 20_000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _quiet_papermill(log_output: bool) -> None:
    """papermill/nbclient log through the "papermill" logger; with no handler configured,
    Python's last-resort handler would print their errors ("Kernel died ...") next to mlkit's
    own one-line report. A NullHandler keeps that quiet unless the application configured
    logging; ``log_output`` streams the notebook's output, as papermill's --log-output does."""
    import logging

    logger = logging.getLogger("papermill")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    if log_output:
        if not any(getattr(h, "_mlkit", False) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler._mlkit = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)


_MARKER = "papermill-error-cell-tag"


def _finalise(partial: Path, out: Path, spec: JobSpec, outcome: JobOutcome) -> None:
    """Mark the outcome in the executed notebook and move it into place (atomic rename)."""
    import nbformat

    if not partial.exists():
        outcome.output = None
        return
    nb = nbformat.read(str(partial), as_version=4)
    cells = [c for c in nb.cells if _MARKER not in c.get("metadata", {}).get("tags", [])]
    if outcome.ok:
        # papermill lets sys.exit(0) pass silently and stops executing: that is an early stop.
        for index, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and output.get("ename") == "SystemExit":
                    outcome.status, outcome.cell_index = "stopped", index
                    outcome.exec_count = cell.get("execution_count")
                    outcome.ename, outcome.evalue = "SystemExit", output.get("evalue", "")
                    break
            if not outcome.ok:
                break
    if not outcome.ok and outcome.cell_index is not None and outcome.cell_index < len(cells):
        cell = cells[outcome.cell_index]
        if outcome.exec_count is None:
            outcome.exec_count = cell.get("execution_count")
        has_error = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        stopped_from_outside = outcome.status in ("timeout", "cancelled")
        if cell.cell_type == "code" and (not has_error or stopped_from_outside):
            # A dead or stopped kernel leaves no error in the cell: say what happened there.
            cell.outputs.append(
                nbformat.v4.new_output(
                    "error",
                    ename=outcome.ename,
                    evalue=outcome.evalue,
                    traceback=[f"{outcome.ename}: {outcome.evalue}"],
                )
            )
    nb.metadata.setdefault("papermill", {})["output_path"] = str(out)
    nb.metadata["mlkit"] = {
        "status": outcome.status,
        "parameters": spec.parameters,
        "recorded": outcome.recorded,
        "duration_s": round(outcome.duration_s, 3),
        "error": None
        if outcome.ok
        else {
            "cell_index": outcome.cell_index,
            "exec_count": outcome.exec_count,
            "ename": outcome.ename,
            "evalue": outcome.evalue,
        },
    }
    text = nbformat.writes(nb)
    atomic_write(out, text if text.endswith("\n") else text + "\n")  # as nbformat.write
    partial.unlink(missing_ok=True)
