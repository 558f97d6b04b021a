"""The measurements of a scaling report, each on the cluster as it is now (after a scale).

:class:`Bench` holds what every step shares: the synthetic table (written once), its split,
the tuning sample and the model logged by the first training. Each ``measure_*`` method runs one
mlkit API on the current workers and returns table records (see :mod:`mlkit.scaling._table`);
the wall clock brackets only the API call, with its input already on the workers.

Examples
--------
>>> bench = Bench(client, Sizes(), home / "table", seed=0)   # doctest: +SKIP
>>> bench.prepare()                                           # doctest: +SKIP
>>> bench.measure_preprocess(workers=2)                       # doctest: +SKIP
[{'measure': 'preprocess', 'workers': 2, 'value': 51234.5, 'unit': 'rows/s', ...}]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlkit.scaling._sizes import Sizes

__all__ = ["Bench", "warm_up"]

_TARGET = "target"


def warm_up() -> bool:
    """Runs on each worker after a scale: what the steps use is imported once, outside every
    timing (a fresh worker would otherwise charge its imports to the first step it runs)."""
    import importlib

    for name in ("pandas", "pyarrow.parquet", "dask.dataframe", "sklearn", "xgboost",
                 "xgboost.dask", "optuna", "mlflow.pyfunc", "mlkit.data._prep.compose",
                 "mlkit.train._xgb_worker", "mlkit.serve._batch", "mlkit.tune._task"):
        importlib.import_module(name)
    return True


def _objective_factory(sample: tuple[Any, ...], rounds: int, seed: int) -> Any:
    """A single-threaded xgboost on a small sample: each trial is one task on one worker slot."""

    def objective(trial: Any) -> float:
        import numpy as np
        import xgboost as xgb

        X, y, Xv, yv = sample
        params = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": trial.suggest_int("max_depth", 2, 6),
            "eta": trial.suggest_float("eta", 0.05, 0.5, log=True),
            "nthread": 1,
            "seed": seed,
        }
        booster = xgb.train(params, xgb.DMatrix(X, y), num_boost_round=rounds)
        pred = booster.predict(xgb.DMatrix(Xv))
        return float(np.mean((pred > 0.5) == yv))

    return objective


class Bench:
    """Shared state of one report's measurements.

    Parameters
    ----------
    client : distributed.Client
    sizes : Sizes
    folder : Path
        Where the synthetic table is written (under the mlkit home: every worker of a local
        cluster reads it).
    seed : int
    stamp : str
        Unique per report: names the studies and scoring servers it starts.
    """

    def __init__(self, client: Any, sizes: Sizes, folder: Path, *, seed: int, stamp: str) -> None:
        self.client = client
        self.sizes = sizes
        self.folder = Path(folder)
        self.seed = seed
        self.stamp = stamp
        self.path = str(self.folder / "table")
        self.model_uri: str | None = None
        self.request_body: str | None = None
        self._sample: tuple[Any, ...] | None = None
        self._test: Any = None
        self._prep: Any = None

    # -- once -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Write the synthetic table (on the cluster) and cut the tuning sample and test set."""
        import mlkit

        s = self.sizes
        mlkit.data.synthetic(
            self.path, rows=s.rows, features=s.features, categorical=2,
            partitions=s.partitions, seed=self.seed, overwrite=True, client=self.client,
            progress=False,
        )
        train, test = self._split(mlkit.data.read(self.path))
        self._test = test.compute()
        prep = mlkit.data.make_preprocessor(train, exclude=[_TARGET])
        head = train.head(min(s.trial_rows, s.rows // 2), npartitions=-1)
        prep.fit(head.drop(columns=_TARGET))
        valid = self._test.head(max(200, s.trial_rows // 4))
        self._sample = (
            prep.transform(head.drop(columns=_TARGET)).to_numpy("float32"),
            head[_TARGET].to_numpy(),
            prep.transform(valid.drop(columns=_TARGET)).to_numpy("float32"),
            valid[_TARGET].to_numpy(),
        )
        from mlflow.utils.proto_json_utils import dump_input_data  # MLflow's request encoder

        self.request_body = dump_input_data(self._test.drop(columns=_TARGET).head(1))

    def _split(self, ddf: Any) -> tuple[Any, Any]:
        import mlkit

        return mlkit.data.split(ddf, (0.8, 0.2), seed=self.seed)

    def _persisted(self, frame: Any) -> Any:
        from distributed import wait

        frame = self.client.persist(frame)
        wait(frame)
        return frame

    def _timed(self, fn: Any) -> tuple[Any, float]:
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0

    # -- per worker count -------------------------------------------------------------------
    def measure_preprocess(self, workers: int) -> list[dict[str, Any]]:
        """rows/s of reading the table, fitting the preprocessing (one distributed pass) and
        transforming every row, the result held on the workers."""
        import mlkit

        def run() -> Any:
            ddf = mlkit.data.read(self.path)
            prep = mlkit.data.make_preprocessor(ddf, exclude=[_TARGET])
            prep.fit(ddf.drop(columns=_TARGET), client=self.client, progress=False)
            out = self._persisted(prep.transform(ddf.drop(columns=_TARGET)))
            del out
            return prep

        self._prep, dt = self._timed(run)
        return [_row("preprocess", workers, self.sizes.rows / dt, "rows/s", dt)]

    def measure_train(self, workers: int, run_id: str, tracking_uri: str) -> list[dict[str, Any]]:
        """rounds/s of xgboost.dask over every worker (raw columns in, the fitted preprocessing
        applied on the workers); the first model trained is logged into the report's run."""
        import mlkit

        train, _ = self._split(mlkit.data.read(self.path))
        train = self._persisted(train)
        result, dt = self._timed(lambda: self._xgboost(train, self.sizes.rounds))
        if self.model_uri is None:
            from dataclasses import replace

            logged = replace(result, run_id=run_id, tracking_uri=tracking_uri)
            self.model_uri = logged.log_model("model")
        return [_row("train", workers, self.sizes.rounds / dt, "rounds/s", dt)]

    def _xgboost(self, train: Any, rounds: int) -> Any:
        import mlkit

        return mlkit.train.xgboost(
            train, _TARGET,
            params={"objective": "binary:logistic", "eval_metric": "error", "seed": self.seed},
            rounds=rounds, preprocess=self._prep, progress=False, track=False,
            client=self.client,
        )

    def measure_tune(self, workers: int) -> list[dict[str, Any]]:
        """trials/min of an Optuna study whose trials run one per worker slot."""
        import optuna

        import mlkit

        assert self._sample is not None, "prepare() first"
        objective = _objective_factory(self._sample, self.sizes.rounds, self.seed)
        _, dt = self._timed(lambda: mlkit.tune.tune(
            objective, n_trials=self.sizes.trials, direction="maximize",
            study_name=f"mlkit-scaling-{self.stamp}-w{workers}",
            sampler=optuna.samplers.TPESampler(seed=self.seed), track=False, progress=False,
            client=self.client,
        ))
        return [_row("tune", workers, self.sizes.trials / dt * 60.0, "trials/min", dt)]

    def measure_batch(self, workers: int) -> list[dict[str, Any]]:
        """rows/s of batch scoring every row with the logged model, on the workers.

        One untimed pass first: each worker loads the model once and keeps it, and a report
        should not count a new worker's model load as scoring time.
        """
        import mlkit

        assert self.model_uri is not None, "measure_train() first"
        raw = self._persisted(mlkit.data.read(self.path).drop(columns=_TARGET))

        def score() -> Any:
            preds = mlkit.serve.batch_predict(raw, self.model_uri, client=self.client)
            return self._persisted(preds)

        score()
        _, dt = self._timed(score)
        return [_row("batch_score", workers, self.sizes.rows / dt, "rows/s", dt)]

    def measure_serving(self, workers: int) -> list[dict[str, Any]]:
        """Latency p50/p99 and requests/s of the logged model behind ``mlkit.serve.start`` (one
        scoring-server process on this machine), under each number of concurrent clients.

        ``workers`` is the cluster's size at the time (the server does not use the cluster).
        """
        import mlkit
        from mlkit.scaling import _latency

        assert self.model_uri is not None and self.request_body is not None
        server = mlkit.serve.start(self.model_uri, name=f"mlkit-scaling-{self.stamp}")
        rows: list[dict[str, Any]] = []
        try:
            for clients in self.sizes.clients:
                m = _latency.measure(server.url, self.request_body, clients, self.sizes.requests)
                common = {"workers": workers, "clients": clients, "seconds": m["seconds"]}
                rows.append({"measure": "latency_p50", "value": m["p50_ms"], "unit": "ms",
                             **common})
                rows.append({"measure": "latency_p99", "value": m["p99_ms"], "unit": "ms",
                             **common})
                rows.append({"measure": "serve_rate", "value": m["requests_per_s"],
                             "unit": "requests/s", **common})
        finally:
            server.stop()
        return rows

    def measure_accuracy(self, workers: int) -> list[dict[str, Any]]:
        """Test accuracy of xgboost trained on growing shares of the training rows."""
        import numpy as np

        import mlkit

        train, _ = self._split(mlkit.data.read(self.path))
        y_test = self._test[_TARGET].to_numpy()
        X_test = self._test.drop(columns=_TARGET)
        rows = []
        for fraction in self.sizes.train_fractions:
            part = train if fraction >= 1 else train.sample(frac=fraction, random_state=self.seed)
            part = self._persisted(part)
            n = int(part.shape[0].compute())
            result, dt = self._timed(lambda p=part: self._xgboost(p, self.sizes.rounds))
            scores = np.asarray(result.predict(X_test)).reshape(len(X_test), -1)[:, -1]
            accuracy = float(np.mean((scores > 0.5).astype(int) == y_test))
            rows.append({"measure": "accuracy", "workers": workers, "train_rows": n,
                         "value": accuracy, "unit": "accuracy", "seconds": dt})
        return rows


def _row(measure: str, workers: int, value: float, unit: str, seconds: float) -> dict[str, Any]:
    return {"measure": measure, "workers": workers, "value": float(value), "unit": unit,
            "seconds": float(seconds)}
