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

    c = mlkit.cluster.up(workers=state.config.workers, threads_per_worker=1)
    st = c.status()
    state.values["cluster"] = c
    return f"{st.n_workers} workers x 1 thread at {st.address} ({c.kind})"


def _step_data(state: DemoState) -> str:
    """Synthetic Parquet written chunk by chunk on the cluster, then split by a stable key."""
    import mlkit
    from mlkit import config

    cfg = state.config
    path = str(config.home("demo") / "data")
    mlkit.data.synthetic(
        path,
        rows=cfg.rows,
        features=10,
        categorical=2,
        partitions=cfg.partitions,
        seed=cfg.seed,
        overwrite=True,
        progress=False,
    )
    ddf = mlkit.data.read(path)
    train, valid, test = mlkit.data.split(ddf, (0.8, 0.1, 0.1), seed=cfg.seed)
    train, valid, test = train.persist(), valid.persist(), test.persist()
    state.values.update(path=path, train=train, valid=valid, test=test)
    fp = mlkit.data.fingerprint(train)
    return f"{cfg.rows:,} rows x {len(ddf.columns) - 1} features at {path} (train {fp.rows:,} rows)"


def _step_validate(state: DemoState) -> str:
    import mlkit

    schema = mlkit.data.Schema.infer(state.values["train"], progress=False)
    report = mlkit.data.validate(state.values["valid"], schema, progress=False)
    state.values["schema"] = schema
    flagged = {c: n for c, n in report.violations.items() if n}
    found = (
        "no violations"
        if report.ok
        else f"{sum(flagged.values())} values outside the training range in {', '.join(flagged)}"
    )
    return f"schema of {len(schema.columns)} columns inferred on train; valid split: {found}"


def _objective_factory(sample: Any) -> Callable[[Any], float]:
    """A single-process xgboost objective on a small sample: each trial is one Dask task."""

    def objective(trial: Any) -> float:
        import numpy as np
        import xgboost as xgb

        X, y, Xv, yv = sample
        params = {
            "objective": "binary:logistic",
            "eval_metric": "auc",
            "tree_method": "hist",
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "eta": trial.suggest_float("eta", 0.05, 0.5, log=True),
            "subsample": trial.suggest_float("subsample", 0.6, 1.0),
            "nthread": 1,
            "seed": 0,
        }
        booster = xgb.train(params, xgb.DMatrix(X, y), num_boost_round=40)
        pred = booster.predict(xgb.DMatrix(Xv))
        order = np.argsort(pred)
        ranks = np.empty_like(order, dtype=float)
        ranks[order] = np.arange(1, len(pred) + 1)
        pos = yv == 1
        n_pos, n_neg = pos.sum(), (~pos).sum()
        return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))

    return objective


def _step_tune(state: DemoState) -> str:
    """A short Optuna study, trials spread over every worker slot."""
    import optuna

    import mlkit

    cfg = state.config
    prep = mlkit.data.make_preprocessor(state.values["train"], exclude=["target"])
    train_pd = state.values["train"].head(min(20_000, cfg.rows // 2), npartitions=-1)
    valid_pd = state.values["valid"].head(5_000, npartitions=-1)
    prep.fit(train_pd.drop(columns="target"))
    sample = (
        prep.transform(train_pd.drop(columns="target")).to_numpy("float32"),
        train_pd["target"].to_numpy(),
        prep.transform(valid_pd.drop(columns="target")).to_numpy("float32"),
        valid_pd["target"].to_numpy(),
    )
    study = mlkit.tune.tune(
        _objective_factory(sample),
        n_trials=cfg.trials,
        direction="maximize",
        study_name=f"mlkit-demo-{int(time.time())}",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        progress=False,
    )
    state.values["best_params"] = study.best_params
    best = ", ".join(f"{k}={v:.3g}" for k, v in study.best_params.items())
    return f"{len(study.trials)} trials on the workers; best AUC {study.best_value:.4f} ({best})"


def _step_train(state: DemoState) -> str:
    """Distributed xgboost with the best parameters and the preprocessing inside the model."""
    import mlkit

    v = state.values
    params = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "seed": 0,
    }
    params.update(v["best_params"])
    prep = mlkit.data.make_preprocessor(v["train"], exclude=["target"])
    with mlkit.track.run("mlkit-demo", experiment="mlkit-demo") as run:
        result = mlkit.train.xgboost(
            v["train"],
            "target",
            valid=v["valid"],
            params=params,
            rounds=60,
            early_stopping=10,
            preprocess=prep,
            progress=False,
        )
        uri = result.log_model("model")
    v.update(result=result, model_uri=uri, run_id=run.info.run_id)
    auc = result.history.iloc[result.best_iteration].filter(like="auc").iloc[-1]
    return f"xgboost.dask on every worker: valid AUC {auc:.4f} at round {result.best_iteration + 1}"


def _step_register(state: DemoState) -> str:
    import mlkit

    info = mlkit.track.register(state.values["model_uri"], "mlkit-demo", alias="candidate")
    champ = mlkit.track.promote("mlkit-demo", info.version, alias="champion")
    state.values["served_uri"] = "models:/mlkit-demo@champion"
    return f"registered mlkit-demo version {champ.version}, alias champion -> {champ.uri}"


def _step_serve(state: DemoState) -> str:
    """MLflow's own scoring server on 127.0.0.1, real HTTP requests with RAW columns."""
    import mlkit

    v = state.values
    server = mlkit.serve.start(v["served_uri"], name="mlkit-demo")
    v["server"] = server
    test = v["test"].head(500, npartitions=-1)
    pred = server.predict(test.drop(columns="target"))
    scores = pred.iloc[:, 0] if hasattr(pred, "iloc") and pred.ndim == 2 else pred
    acc = float(((scores.to_numpy() > 0.5).astype(int) == test["target"].to_numpy()).mean())
    return f"served at {server.url}; {len(test)} rows over HTTP, accuracy {acc:.3f}"


def _step_drift(state: DemoState) -> str:
    """Drift of a shifted sample against the training data, computed on the cluster."""
    import mlkit

    v = state.values
    features = [c for c in v["train"].columns if c != "target"]
    current = v["test"][features]
    current = current.assign(f0=current["f0"] + 1.0)  # one feature moved by about one SD
    report = mlkit.monitor.drift(v["train"][features], current, progress=False)
    drifted = [f.feature for f in report.features if f.drifted]
    verdict = "DRIFT" if report.drifted else "no drift"
    names = ", ".join(drifted) or "-"
    return f"{verdict}: {len(drifted)} of {len(report.features)} features drifted ({names})"


def _step_stop(state: DemoState) -> str:
    import mlkit

    server = state.values.pop("server", None)
    if server is not None:
        server.stop()
    mlkit.cluster.down()
    return "scoring server and cluster stopped"


STEPS: list[tuple[str, Callable[[DemoState], str]]] = [
    ("cluster", _step_cluster),
    ("data", _step_data),
    ("validate", _step_validate),
    ("tune", _step_tune),
    ("train", _step_train),
    ("register", _step_register),
    ("serve", _step_serve),
    ("drift", _step_drift),
    ("stop", _step_stop),
]


def run_demo(config: DemoConfig | None = None, echo: Callable[[str], None] = print) -> DemoState:
    """Run every demo step, printing progress; always stops the cluster.

    Examples
    --------
    >>> state = run_demo(DemoConfig(rows=10_000, workers=1))   # doctest: +SKIP
    """
    import logging
    import os

    import mlkit

    # The demo prints its own summary: keep MLflow's INFO lines and download bars out of it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
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
        server = state.values.pop("server", None)
        if server is not None:
            server.stop()
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
