"""``mlkit demo``: the main job. It runs the whole loop on embedded defaults and prints a summary.

Each step is a small function that returns a line for the summary; a failing step stops the demo
with a clear message and a non-zero exit, and the cluster is always stopped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

__all__ = ["DemoConfig", "run_demo", "demo_command"]


@dataclass
class DemoConfig:
    """Scale knobs of the demo."""

    rows: int = 200_000
    workers: int = 2
    trials: int = 8
    partitions: int = 8
    seed: int = 0


@dataclass
class DemoState:
    config: DemoConfig
    values: dict[str, Any] = field(default_factory=dict)
    summary: list[tuple[str, str, float]] = field(default_factory=list)


def _step_cluster(state: DemoState) -> str:
    import mlkit

    c = mlkit.cluster.up(workers=state.config.workers)
    st = c.status()
    state.values["cluster"] = c
    return (
        f"{st.n_workers} workers x {st.threads // max(1, st.n_workers)} thread(s) at {st.address}"
    )


def _step_compute(state: DemoState) -> str:
    """A real distributed computation: a seeded random table reduced across every worker."""
    import dask.array as da

    cfg = state.config
    rng = da.random.default_rng(cfg.seed)
    x = rng.standard_normal((cfg.rows, 8), chunks=(max(1, cfg.rows // cfg.partitions), 8))
    y = x @ da.arange(1, 9, dtype="f8") + rng.standard_normal(cfg.rows, chunks=x.chunks[0])
    stats = da.compute(x.mean(axis=0), y.std())
    return (
        f"{cfg.rows:,} rows in {cfg.partitions} partitions: mean |x| {abs(stats[0]).max():.4f}, "
        f"std y {float(stats[1]):.3f}"
    )


STEPS: list[tuple[str, Callable[[DemoState], str]]] = [
    ("cluster", _step_cluster),
    ("compute", _step_compute),
]


def run_demo(config: DemoConfig | None = None, echo: Callable[[str], None] = print) -> DemoState:
    """Run every demo step, printing progress; always stops the cluster.

    Examples
    --------
    >>> state = run_demo(DemoConfig(rows=10_000, workers=1))   # doctest: +SKIP
    """
    import mlkit

    state = DemoState(config or DemoConfig())
    start = time.perf_counter()
    try:
        for i, (name, step) in enumerate(STEPS, 1):
            echo(f"[{i}/{len(STEPS)}] {name} ...")
            t0 = time.perf_counter()
            line = step(state)
            dt = time.perf_counter() - t0
            state.summary.append((name, line, dt))
            echo(f"      {line} ({dt:.1f}s)")
    finally:
        mlkit.cluster.down()
    state.values["total_seconds"] = time.perf_counter() - start
    return state


@click.command("demo")
@click.option("--rows", type=click.IntRange(min=1000), default=DemoConfig.rows, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1), default=DemoConfig.workers, show_default=True
)
@click.option("--trials", type=click.IntRange(min=1), default=DemoConfig.trials, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_command(rows: int, workers: int, trials: int, seed: int) -> None:
    """Run mlkit's whole loop on this machine and print a summary."""
    from mlkit.exceptions import MlkitError

    cfg = DemoConfig(rows=rows, workers=workers, trials=trials, seed=seed)
    try:
        state = run_demo(cfg, echo=click.echo)
    except MlkitError as exc:
        click.echo(f"mlkit demo failed: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        click.echo(f"mlkit demo failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    click.echo("\nsummary")
    for name, line, dt in state.summary:
        click.echo(f"  {name:<10} {line}  [{dt:.1f}s]")
    click.echo(f"  total      {state.values['total_seconds']:.1f}s")
