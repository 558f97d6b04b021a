"""Fixtures for the serving tests: one small real model and two real scoring servers per session.

Scoring servers take seconds to start on a shared 2-core machine, so the plain one
(``mlflow models serve``) and the instrumented one (metrics + prediction log) are started once,
concurrently, in a session-scoped mlkit home, and shared by every serving test. Tests that look
at that home's registry use the ``at_serve_home`` fixture.
"""

from __future__ import annotations

import contextlib
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

FEATURES = ["f0", "f1", "f2", "color"]


@contextlib.contextmanager
def home_env(home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLKIT_HOME", str(home))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield


def make_frame(n: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["f0", "f1", "f2"])
    X["color"] = rng.choice(["red", "green", "blue"], n)
    return X


def fit_pipeline(X, flip: bool = False):
    """Raw columns in, preprocessing inside: impute + scale numbers, one-hot the colour."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    y = ((X.f0 + X.f1 + (X.color == "red")) > 0.5).astype("int64")
    if flip:
        y = 1 - y
    pre = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["f0", "f1", "f2"]),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(X, y)


def log_model(model, X, name: str) -> str:
    """Log ``model`` to the active tracking store and register it; returns the version."""
    import mlflow
    from mlflow.models import infer_signature

    import mlkit

    with mlkit.track.run(f"fit-{name}"):
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(X, model.predict(X)),
            registered_model_name=name, skops_trusted_types=["numpy.dtype"],
            pip_requirements=["scikit-learn"],  # skip MLflow's slow requirement inference
        )
    return str(info.registered_model_version)


@pytest.fixture(scope="session")
def helpers():
    """The helpers above, for test modules (they cannot import this conftest)."""
    return types.SimpleNamespace(
        home_env=home_env, make_frame=make_frame, fit_pipeline=fit_pipeline, log_model=log_model,
        features=FEATURES,
    )


@pytest.fixture(scope="session")
def serve_home(tmp_path_factory):
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="session")
def demo(serve_home):
    """A registered model ``demo`` (version 1, alias ``champion``) and its expected outputs."""
    import mlflow

    import mlkit

    with home_env(serve_home):
        tracking_uri = mlkit.track.configure("serve-tests")
        X = make_frame(300, seed=0)
        model = fit_pipeline(X)
        version = log_model(model, X, "demo")
        mlflow.MlflowClient(tracking_uri).set_registered_model_alias("demo", "champion", version)
        local = mlflow.artifacts.download_artifacts(
            "models:/demo/1", dst_path=str(serve_home / "demo-model"), tracking_uri=tracking_uri
        )
    return types.SimpleNamespace(
        home=serve_home, tracking_uri=tracking_uri, X=X, model=model, version=version,
        alias_uri="models:/demo@champion", version_uri=f"models:/demo/{version}",
        local_path=local,
    )


@pytest.fixture(scope="session")
def servers(demo):
    """``plain``: mlflow models serve; ``inst``: metrics + prediction log (flush every 5)."""
    import mlkit

    with home_env(demo.home):
        with ThreadPoolExecutor(2) as pool:
            plain = pool.submit(mlkit.serve.start, demo.alias_uri, name="plain")
            inst = pool.submit(
                mlkit.serve.start, demo.version_uri, name="inst", metrics=True,
                log_predictions=True, flush_every=5, flush_seconds=3600,
            )
            started = {"plain": plain.result(), "inst": inst.result()}
    yield started
    for srv in started.values():
        srv.stop()


@pytest.fixture
def at_serve_home(demo, monkeypatch):
    """Point this test's mlkit home at the session's serving home."""
    monkeypatch.setenv("MLKIT_HOME", str(demo.home))
    return demo.home
