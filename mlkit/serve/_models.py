"""Model references: check a model URI or path before any process starts, pin aliases.

A scoring server that fails to find its model only says so in its log after seconds of start-up;
checking the reference first (a registry lookup, a stat) gives one clear error at once.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlkit.exceptions import ServeError

__all__ = ["ModelRef", "resolve", "default_name", "local_folder", "NAME_RE"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class ModelRef:
    """A checked model reference.

    Attributes
    ----------
    uri : str
        What to hand to MLflow (an absolute path for local models).
    pinned : str
        ``uri`` with a registry alias replaced by the version it points at now
        (``models:/name@champion`` -> ``models:/name/3``), so a batch job scores one version
        even if the alias moves while it runs.
    version : str or None
        Registered model version, when the reference is a registered model.
    local : bool
        True for a model folder on this machine.
    location : str
        Where the model's files are (``file:///...``, ``s3://...``, a path): what worker
        processes load, with no tracking store to ask (their environment may point elsewhere).
    """

    uri: str
    pinned: str
    version: str | None
    local: bool
    location: str


def local_folder(ref: ModelRef) -> str | None:
    """The model's folder on this machine, when its files are local (a path or ``file://``)."""
    if ref.local:
        return ref.uri
    if ref.location.startswith("file:"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        path = url2pathname(urlparse(ref.location).path)
        return path if (Path(path) / "MLmodel").is_file() else None
    return None


def _local(model: str | Path) -> ModelRef:
    path = Path(model).expanduser().resolve()
    if not (path / "MLmodel").is_file():
        what = "does not exist" if not path.exists() else "has no MLmodel file"
        raise ServeError(
            f"model path {str(model)!r} {what}: pass an MLflow model folder (the one holding "
            "'MLmodel'), a 'models:/NAME@ALIAS', 'models:/NAME/VERSION' or 'runs:/RUN_ID/PATH' URI"
        )
    return ModelRef(str(path), str(path), None, True, str(path))


def _registered(uri: str, tracking_uri: str) -> ModelRef:
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    body = uri[len("models:/"):].strip("/")
    # MLflow 3 logged models: models:/m-<id>
    if re.fullmatch(r"m-[0-9a-f]{32}", body):
        try:
            location = client.get_logged_model(body).artifact_location
        except MlflowException as exc:
            raise ServeError(f"model {uri!r} not found in {tracking_uri}: {exc.message}") from None
        return ModelRef(uri, uri, None, False, location)
    name, sep, alias = body.partition("@")
    try:
        if sep:
            version = str(client.get_model_version_by_alias(name, alias).version)
            pinned = f"models:/{name}/{version}"
        else:
            name, _, version = body.rpartition("/")
            if not name or not version:
                raise ServeError(
                    f"cannot read model URI {uri!r}: use 'models:/NAME@ALIAS' or "
                    "'models:/NAME/VERSION'"
                )
            if version.lower() == "latest":
                versions = client.search_model_versions(f"name='{name}'")
                if not versions:
                    raise ServeError(f"registered model {name!r} has no versions ({uri!r})")
                version = str(max(int(v.version) for v in versions))
            elif not version.isdigit():  # a stage (deprecated in MLflow, still resolved there)
                found = client.get_latest_versions(name, stages=[version])
                if not found:
                    raise ServeError(f"registered model {name!r} has no version in stage "
                                     f"{version!r} ({uri!r}); use an alias instead")
                version = str(found[0].version)
            pinned = f"models:/{name}/{version}"
        location = client.get_model_version_download_uri(name, version)
        return ModelRef(uri, pinned, version, False, location)
    except MlflowException as exc:
        hint = ""
        with contextlib.suppress(Exception):  # the hint is optional
            aliases = sorted(client.get_registered_model(name).aliases)
            hint = f"; its aliases are {aliases}" if aliases else "; it has no aliases"
        raise ServeError(
            f"model {uri!r} not found in the registry at {tracking_uri}: {exc.message}{hint}. "
            "Register and promote it first (mlkit.track.register / promote or MLflow's registry)"
        ) from None


def _run(uri: str, tracking_uri: str) -> ModelRef:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking.artifact_utils import get_artifact_uri

    parts = uri[len("runs:/"):].strip("/").split("/", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ServeError(f"cannot read model URI {uri!r}: use 'runs:/RUN_ID/ARTIFACT_PATH'")
    client = mlflow.MlflowClient(tracking_uri)
    try:
        run = client.get_run(parts[0])
    except MlflowException as exc:
        raise ServeError(
            f"run {parts[0]!r} of {uri!r} not found in {tracking_uri}: {exc.message}"
        ) from None
    # MLflow 3 keeps a model logged in a run as a "logged model" of its own, found by name.
    location = get_artifact_uri(parts[0], parts[1], tracking_uri=tracking_uri)
    with contextlib.suppress(MlflowException):
        found = client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{parts[0]}' AND name = '{parts[1]}'",
            max_results=1,
        )
        if found:
            location = found[0].artifact_location
    return ModelRef(uri, uri, None, False, location)


def resolve(model: Any, tracking_uri: str) -> ModelRef:
    """Check that ``model`` names an MLflow model and return its :class:`ModelRef`.

    Parameters
    ----------
    model : str or pathlib.Path
        ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/m-<id>``,
        ``runs:/RUN_ID/PATH``, another URI MLflow can download (``s3://...``), or a local folder.
    tracking_uri : str
        Where registry and run lookups go.

    Examples
    --------
    >>> resolve("models:/iris@champion", "sqlite:///mlflow.db").pinned   # doctest: +SKIP
    'models:/iris/3'
    """
    if isinstance(model, Path):
        return _local(model)
    if not isinstance(model, str) or not model.strip():
        raise ServeError(
            f"model must be a model URI or a path, but got {model!r}; e.g. 'models:/iris@champion'"
        )
    model = model.strip()
    if model.startswith("models:/"):
        return _registered(model, tracking_uri)
    if model.startswith("runs:/"):
        return _run(model, tracking_uri)
    if model.startswith("file://"):
        return _local(model[len("file://"):])
    if _SCHEME_RE.match(model) and not re.match(r"^[A-Za-z]:[\\/]", model):
        return ModelRef(model, model, None, False, model)  # s3://, gs://, mlflow-artifacts:/
    return _local(model)


def default_name(model: Any) -> str:
    """A readable server name for ``model``: ``models:/iris@champion`` -> ``iris-champion``.

    Examples
    --------
    >>> default_name("models:/iris@champion"), default_name("models:/iris/3")
    ('iris-champion', 'iris-3')
    >>> default_name("runs:/0123456789abcdef/model")
    'run-01234567'
    """
    text = str(model).strip().rstrip("/")
    if text.startswith("models:/"):
        base = text[len("models:/"):].replace("@", "-").replace("/", "-")
    elif text.startswith("runs:/"):
        base = "run-" + text[len("runs:/"):].split("/")[0][:8]
    else:
        base = Path(text).name or "model"
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.") or "model"
    return base[:48]
