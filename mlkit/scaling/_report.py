"""``mlkit.scaling.report``: measure what adding workers buys, on the cluster you have.

For each worker count the cluster is scaled (and waited for), the workers import the engines,
then each step runs one mlkit API with its input already on the workers. The cluster ends as it
was found: scaled back to its size, or stopped if the report started it.

Examples
--------
>>> import mlkit
>>> rep = mlkit.scaling.report(workers=(1, 2), out="scaling")     # doctest: +SKIP
>>> rep.table.query("measure == 'train'")                         # doctest: +SKIP
>>> rep.html_path                                                 # doctest: +SKIP
PosixPath('scaling/scaling_report.html')
"""

from __future__ import annotations

import os
import platform
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlkit.exceptions import ConfigError
from mlkit.scaling._sizes import Sizes
from mlkit.scaling._workers import check_limit, parse_workers

__all__ = ["report", "ScalingReport", "HTML_NAME"]

HTML_NAME = "scaling_report.html"
_SCALE_TIMEOUT = 600.0
CSV_NAME = "scaling_report.csv"

# measured for every worker count; serving and accuracy run once, on the largest
_STEPS = ("preprocess", "train", "tune", "batch scoring")


@dataclass
class ScalingReport:
    """What :func:`report` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy: one row per measurement (``measure``, ``workers``, ``clients``, ``train_rows``,
        ``value``, ``unit``, ``ideal``, ``efficiency``, ``seconds``); see
        :mod:`mlkit.scaling._table`.
    figures : dict of str -> matplotlib.figure.Figure
        ``throughput``, ``efficiency``, ``latency``, ``accuracy``; a notebook shows one inline
        when it is a cell's value.
    html_path : pathlib.Path
        The self-contained HTML report.
    run_id : str
        The MLflow run holding the metrics and the HTML (and CSV) artifacts.
    meta : dict
        Cluster, machine, sizes and client of the run (the header of the HTML report).
    """

    table: Any
    figures: dict[str, Any]
    html_path: Path
    run_id: str
    meta: dict[str, Any] = field(default_factory=dict)
    pngs: dict[str, bytes] = field(default_factory=dict, repr=False)

    def efficiency(self) -> Any:
        """Efficiency of every throughput, one column per worker count.

        Examples
        --------
        >>> rep.efficiency()          # doctest: +SKIP
        workers                  1     2
        measure
        batch_score            1.0  0.81
        """
        t = self.table.dropna(subset=["efficiency"])
        return t.pivot_table(index="measure", columns="workers", values="efficiency")

    def _repr_html_(self) -> str:
        from mlkit.scaling._html import fragment

        return f"<h3>mlkit scaling report</h3>{fragment(self)}"

    def __repr__(self) -> str:
        workers = sorted(self.table["workers"].unique().tolist())
        return (f"<ScalingReport workers={workers} rows={len(self.table)} "
                f"html={str(self.html_path)!r} run_id={self.run_id!r}>")


def _check_out(out: Any) -> Path:
    from mlkit import config

    if out is None:
        # home_path: nothing is created before every argument has passed
        return config.home_path() / "scaling-reports" / time.strftime("%Y%m%d-%H%M%S")
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ConfigError(f"out={out!r} must be a folder path for the report")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"out={str(out)!r} is a file; pass a folder for the report")
    return path


def _sizes(sizes: Sizes | None, scale: int, overrides: dict[str, Any]) -> Sizes:
    given = {k: v for k, v in overrides.items() if v is not None}
    if sizes is not None:
        if not isinstance(sizes, Sizes):
            raise ConfigError(f"sizes must be a mlkit.scaling.Sizes, got {type(sizes).__name__}")
        from dataclasses import replace

        base = replace(sizes, **given)
    else:
        base = Sizes(**given)
    return base.scaled(scale)


def report(
    workers: Any = (1, 2),
    out: str | os.PathLike[str] | None = None,
    *,
    rows: int | None = None,
    rounds: int | None = None,
    trials: int | None = None,
    requests: int | None = None,
    clients: Any = None,
    train_fractions: Any = None,
    scale: int = 1,
    sizes: Sizes | None = None,
    experiment: str = "mlkit-scaling",
    seed: int = 0,
    progress: bool | None = None,
) -> ScalingReport:
    """Measure throughput, latency and accuracy for each worker count; plot, write, log.

    Runs on the active cluster (scaled to each count in turn, then back), or on a local cluster
    it starts (one thread per worker) and stops. Every argument is checked before anything runs.

    Parameters
    ----------
    workers : int, str or sequence of int
        Worker counts to measure, e.g. ``(1, 2)`` or ``"1,2,4"``. At most one per core on a
        local cluster; a cluster joined by address can only be measured at its present size.
    out : str or path, optional
        Folder for ``scaling_report.html`` and ``scaling_report.csv`` (created; default a new
        folder under ``<mlkit home>/scaling-reports/``).
    rows, rounds, trials, requests : int, optional
        Sizes of the synthetic table, boosting rounds per training, tuning trials per worker
        count, HTTP requests per concurrent client (defaults: :class:`Sizes`).
    clients : sequence of int, optional
        Concurrent clients of the served model (default ``(1, 8)``; add 32 for a busier test).
    train_fractions : sequence of float, optional
        Shares of the training rows of the accuracy curve (default ``(0.1, 0.3, 1.0)``).
    scale : int
        Multiplies rows, rounds, trials and requests: small runs mostly measure fixed costs.
    sizes : Sizes, optional
        All sizes at once (the arguments above override its fields).
    experiment : str
        MLflow experiment of the report's run.
    seed : int
        Seeds the table, the splits, xgboost and the study's sampler.
    progress : bool, optional
        Show a progress bar of the steps (default: show).

    Returns
    -------
    ScalingReport
        ``.table`` (tidy pandas), ``.figures`` (matplotlib), ``.html_path``, ``.run_id``.

    Raises
    ------
    ConfigError
        A bad argument (e.g. ``workers=0``, ``"1,x"`` or more workers than the cluster
        allows), before anything starts or is written.

    Examples
    --------
    >>> import mlkit
    >>> rep = mlkit.scaling.report(workers=(1, 2), out="scaling")   # doctest: +SKIP
    >>> rep.efficiency()                                            # doctest: +SKIP
    >>> rep.figures["throughput"]                                   # doctest: +SKIP
    """
    # -- 1. every argument, before anything starts or is written --------------------------------
    counts = parse_workers(workers)
    sz = _sizes(sizes, scale, {"rows": rows, "rounds": rounds, "trials": trials,
                               "requests": requests, "clients": clients,
                               "train_fractions": train_fractions})
    folder = _check_out(out)
    if not isinstance(experiment, str) or not experiment.strip():
        raise ConfigError(f"experiment={experiment!r} must be a non-empty name")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, but got {seed!r}")
    import mlkit
    from mlkit.cluster import current

    active = current()
    check_limit(counts, workers, active)

    # -- 2. the cluster, the run, the measurements ---------------------------------------------
    started = active is None
    cluster = active or mlkit.cluster.up(workers=counts[0], threads_per_worker=1)
    before = len(cluster.client.scheduler_info(n_workers=-1)["workers"])
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    try:
        return _measure_all(cluster, counts, sz, folder, experiment, seed, stamp, progress)
    finally:
        if started:
            mlkit.cluster.down()
        elif not cluster.closed and cluster.deploy is not None and before:
            now = len(cluster.client.scheduler_info(n_workers=-1)["workers"])
            if now != before:
                cluster.scale(before, timeout=_SCALE_TIMEOUT)


def _meta(cluster: Any, counts: tuple[int, ...], sz: Sizes, stamp: str) -> dict[str, Any]:
    from mlkit.scaling._latency import CLIENT

    info = cluster.client.scheduler_info(n_workers=-1)["workers"]
    threads = sorted({int(w.get("nthreads", 0)) for w in info.values()})
    return {
        "report": stamp,
        "cluster": f"{cluster.kind} at {cluster.address}",
        "workers measured": ", ".join(map(str, counts)),
        "threads per worker": ", ".join(map(str, threads)),
        "machine": f"{platform.node()} ({os.cpu_count()} cores, load "
                   f"{', '.join(f'{x:.1f}' for x in os.getloadavg())})",
        "sizes": ", ".join(f"{k}={v}" for k, v in sz.to_dict().items()),
        "serving": "one MLflow scoring server process (mlkit.serve.start), one-row requests",
        "client": CLIENT,
    }


def _measure_all(
    cluster: Any, counts: tuple[int, ...], sz: Sizes, folder: Path, experiment: str,
    seed: int, stamp: str, progress: bool | None,
) -> ScalingReport:
    import mlflow

    import mlkit
    from mlkit import config
    from mlkit._display import ProgressBar, ProgressState
    from mlkit.scaling import _html, _plots
    from mlkit.scaling._measure import Bench, warm_up
    from mlkit.scaling._table import THROUGHPUT, metric_name, with_ideal
    from mlkit.track._writer import RunWriter

    client = cluster.client
    bench = Bench(client, sz, config.home("scaling", stamp), seed=seed, stamp=stamp)
    state = ProgressState("scaling report", total=1 + len(counts) * len(_STEPS) + 2,
                          unit="step")
    bar = ProgressBar(state, enabled=progress is not False)
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        state.update(done, {"last": label})
        bar.refresh()

    params = {"workers": ",".join(map(str, counts)), "seed": seed, **sz.to_dict()}
    records: list[dict[str, Any]] = []
    try:
        with mlkit.track.run("scaling-report", experiment=experiment, params=params,
                             tags={"mlkit.kind": "scaling-report"}) as run:
            run_id = run.info.run_id
            tracking_uri = mlflow.get_tracking_uri()
            bench.prepare()
            step("table written")
            for n in counts:
                if len(client.scheduler_info(n_workers=-1)["workers"]) != n:
                    # a generous wait: a new worker process starts slowly on a loaded machine
                    cluster.scale(n, timeout=_SCALE_TIMEOUT)
                client.run(warm_up)
                records += bench.measure_preprocess(n)
                step(f"w{n} preprocess")
                records += bench.measure_train(n, run_id, tracking_uri)
                step(f"w{n} train")
                records += bench.measure_tune(n)
                step(f"w{n} tune")
                records += bench.measure_batch(n)
                step(f"w{n} batch scoring")
            records += bench.measure_serving(counts[-1])
            step("serving")
            records += bench.measure_accuracy(counts[-1])
            step("accuracy")

            table = with_ideal(records)
            figures = _plots.figures(table)
            rep = ScalingReport(
                table=table, figures=figures, html_path=folder / HTML_NAME, run_id=run_id,
                meta=_meta(cluster, counts, sz, stamp),
                pngs={name: _plots.to_png(fig) for name, fig in figures.items()},
            )
            folder.mkdir(parents=True, exist_ok=True)
            rep.html_path.write_text(_html.document(rep), encoding="utf-8")
            table.to_csv(folder / CSV_NAME, index=False)

            writer = RunWriter(run_id, tracking_uri)
            for row in table.to_dict("records"):
                writer.metric(metric_name(row), row["value"])
                if row["measure"] in THROUGHPUT:
                    writer.metric(metric_name(row, "efficiency"), row["efficiency"])
            writer.close()
            mlflow.log_artifact(str(rep.html_path), run_id=run_id)
            mlflow.log_artifact(str(folder / CSV_NAME), run_id=run_id)
    except BaseException as exc:
        bar.close("stopped" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    bar.close("finished", note=f"{len(counts)} worker count(s) measured")
    return rep
