"""Model registry helpers: register a run's model, move aliases, list versions.

MLflow's registry does the work (``mlflow.register_model``, ``set_registered_model_alias``);
these helpers accept what a notebook user has at hand (a run id, a run, a URI), check every
name before anything is written, and answer a mistake with one error naming what exists.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlkit._imports import require
from mlkit.exceptions import ConfigError, TrackingError
from mlkit.track import _store
from mlkit.track._defaults import configure

__all__ = ["list_models", "ModelVersionInfo", "ModelVersions", "register", "promote", "models"]

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_ALIAS = re.compile(r"^[A-Za-z0-9_-]+$")  # MLflow's rule for alias names
_MAX_LISTED = 10


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version and the aliases pointing at it.

    ``uri`` (``models:/NAME/VERSION``) is what ``mlkit.serve.start`` and
    ``mlflow.pyfunc.load_model`` take; ``models:/NAME@ALIAS`` works too.

    Examples
    --------
    >>> v = ModelVersionInfo("churn", 3, ("champion",), "ab" * 16, "models:/m-1", "READY", None)
    >>> v.uri, v.alias_uri()
    ('models:/churn/3', 'models:/churn@champion')
    """

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str | None
    source: str
    status: str
    created: datetime | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def alias_uri(self, alias: str | None = None) -> str:
        """``models:/NAME@ALIAS`` for ``alias`` (default: this version's first alias)."""
        chosen = alias or (self.aliases[0] if self.aliases else None)
        if chosen is None:
            raise TrackingError(f"{self.name} version {self.version} has no alias")
        return f"models:/{self.name}@{chosen}"

    def _row(self) -> list[str]:
        created = self.created.strftime("%Y-%m-%d %H:%M:%S") if self.created else ""
        return [self.name, str(self.version), ", ".join(self.aliases), self.run_id or "",
                self.status, created]

    def __str__(self) -> str:
        aliases = f" @{', @'.join(self.aliases)}" if self.aliases else ""
        return f"{self.name} v{self.version}{aliases} (run {self.run_id or '-'}, {self.status})"

    def _repr_html_(self) -> str:
        return ModelVersions([self])._repr_html_()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


_HEADER = ["model", "version", "aliases", "run", "status", "created"]


class ModelVersions(list[Any]):
    """A list of :class:`ModelVersionInfo` that shows as a table (HTML in a notebook).

    Examples
    --------
    >>> print(ModelVersions([]))
    no registered model versions
    """

    def to_pandas(self) -> Any:
        """The versions as a pandas DataFrame (one row each)."""
        pd = require("pandas")
        return pd.DataFrame(
            [
                {"model": v.name, "version": v.version, "aliases": list(v.aliases),
                 "run_id": v.run_id, "status": v.status, "created": v.created, "source": v.source}
                for v in self
            ],
            columns=["model", "version", "aliases", "run_id", "status", "created", "source"],
        )

    def __str__(self) -> str:
        if not self:
            return "no registered model versions"
        rows = [_HEADER, *[v._row() for v in self]]
        widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
        lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        if not self:
            return "<p>no registered model versions</p>"
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in _HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in v._row())
            + "</tr>"
            for v in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def _check_model_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"model name must be a non-empty string, but got {name!r}")
    if "/" in name or ":" in name:
        raise ConfigError(f"model name {name!r} cannot contain '/' or ':' (MLflow's rule)")
    return name


def _check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise ConfigError(
            f"alias must be letters, digits, '_' or '-' (e.g. 'champion'), but got {alias!r}"
        )
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ConfigError(
            f"alias {alias!r} is reserved by MLflow ('latest' and 'v<number>' name versions)"
        )
    return alias


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _client() -> Any:
    mlflow = require("mlflow")
    uri = configure()
    return mlflow.MlflowClient(uri, registry_uri=uri)


def _known(items: list[str]) -> str:
    if not items:
        return "none"
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" ... ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def _get_run(client: Any, run_id: str) -> Any:
    try:
        return client.get_run(run_id)
    except Exception as exc:
        if _not_found(exc):
            raise TrackingError(
                f"no run with id {run_id!r} in the tracking store {client.tracking_uri}"
            ) from None
        raise


def _run_model_uri(client: Any, run_id: str) -> str:
    """The one model a run logged: its LoggedModel (MLflow 3) or an MLmodel artifact folder."""
    run = _get_run(client, run_id)
    ids: list[str] = []
    outputs = getattr(run, "outputs", None)
    for out in getattr(outputs, "model_outputs", None) or []:
        if out.model_id not in ids:
            ids.append(out.model_id)
    if not ids and hasattr(client, "search_logged_models"):
        found = client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        ids = [m.model_id for m in found]
    uris = [f"models:/{i}" for i in ids]
    if not uris:  # a model logged as plain artifacts (MLflow 2 style)
        for item in client.list_artifacts(run_id):
            if item.is_dir and any(
                a.path.endswith("/MLmodel") for a in client.list_artifacts(run_id, item.path)
            ):
                uris.append(f"runs:/{run_id}/{item.path}")
    if not uris:
        raise TrackingError(
            f"run {run_id} has no logged model: log one in the run (e.g. result.log_model() or "
            "mlflow.pyfunc.log_model) or pass a models:/ or runs:/ URI"
        )
    if len(uris) > 1:
        raise TrackingError(
            f"run {run_id} logged {len(uris)} models; pass the one to register: {_known(uris)}"
        )
    return uris[0]


def _resolve_source(client: Any, model: Any) -> str:
    info = getattr(model, "info", None)
    if info is not None and hasattr(info, "run_id"):  # mlflow Run / ActiveRun
        return _run_model_uri(client, info.run_id)
    model_uri = getattr(model, "model_uri", None)  # mlflow.models.model.ModelInfo
    if isinstance(model_uri, str):
        model = model_uri
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(
            f"model must be a models:/ or runs:/ URI, a run id or a run, but got {model!r}"
        )
    model = model.strip()
    if _RUN_ID.match(model):
        return _run_model_uri(client, model)
    if _LOGGED_MODEL_ID.match(model):
        model = f"models:/{model}"
    if model.startswith("runs:/"):
        parts = model[len("runs:/"):].split("/", 1)
        _get_run(client, parts[0])
        if len(parts) == 1 or not parts[1]:
            return _run_model_uri(client, parts[0])
        return model
    if model.startswith("models:/"):
        ref = model[len("models:/"):]
        if _LOGGED_MODEL_ID.match(ref):
            try:
                client.get_logged_model(ref)
            except Exception as exc:
                if _not_found(exc):
                    raise TrackingError(
                        f"no logged model {ref!r} in {client.tracking_uri}"
                    ) from None
                raise
        return model
    raise ConfigError(
        f"cannot register {model!r}: pass a models:/ URI, a runs:/<run id>/<path> URI or a run id"
    )


def _info(client: Any, mv: Any, aliases: dict[str, list[str]] | None = None) -> ModelVersionInfo:
    version = int(mv.version)
    if aliases is None:
        rm = client.get_registered_model(mv.name)
        names = sorted(a for a, v in (rm.aliases or {}).items() if int(v) == version)
    else:
        names = sorted(aliases.get(str(version), []))
    ts = getattr(mv, "creation_timestamp", None)
    created = datetime.fromtimestamp(ts / 1000, tz=timezone.utc) if ts else None
    return ModelVersionInfo(
        name=mv.name,
        version=version,
        aliases=tuple(names),
        run_id=mv.run_id or None,
        source=str(mv.source),
        status=str(mv.status),
        created=created,
        tags=dict(mv.tags or {}),
    )


def register(
    model: Any, name: str, alias: str | None = "candidate", *, tags: dict[str, Any] | None = None
) -> ModelVersionInfo:
    """Register a model as a new version of ``name`` and point ``alias`` at it.

    Parameters
    ----------
    model : str or mlflow Run
        A ``models:/...`` URI (what ``log_model`` returns), a ``runs:/RUN_ID/PATH`` URI, a run id
        or a run: for a run, the one model it logged is registered.
    name : str
        Registered model name (created on first use).
    alias : str or None
        Alias for the new version (default ``"candidate"``); None sets none.
    tags : dict, optional
        Tags for the new version.

    Returns
    -------
    ModelVersionInfo
        ``.version``, ``.aliases``, ``.uri`` (``models:/NAME/VERSION``).

    Examples
    --------
    >>> import mlkit
    >>> v = mlkit.track.register(run_id, "churn")               # doctest: +SKIP
    >>> v.version, v.aliases                                      # doctest: +SKIP
    (1, ('candidate',))
    """
    _check_model_name(name)
    if alias is not None:
        _check_alias(alias)
    mlflow = require("mlflow")
    client = _client()
    source = _resolve_source(client, model)
    try:
        mv = _store.retry_locked(
            mlflow.register_model, source, name,
            tags={k: str(v) for k, v in (tags or {}).items()} or None,
        )
    except Exception as exc:
        if _not_found(exc) or getattr(exc, "error_code", "") == "INVALID_PARAMETER_VALUE":
            raise TrackingError(f"cannot register {source!r} as {name!r}: {exc}") from None
        raise
    if alias is not None:
        _store.retry_locked(client.set_registered_model_alias, name, alias, str(mv.version))
    return _info(client, client.get_model_version(name, str(mv.version)))


def _registered(client: Any, name: str) -> Any:
    try:
        return client.get_registered_model(name)
    except Exception as exc:
        if _not_found(exc):
            known = sorted(m.name for m in _all_registered(client))
            raise TrackingError(
                f"no registered model {name!r}; registered models: {_known(known)}"
            ) from None
        raise


def _versions(client: Any, name: str) -> list[Any]:
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return list(client.search_model_versions(f"name = '{escaped}'"))


def _all_registered(client: Any) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def promote(name: str, version: int | str, alias: str = "champion") -> ModelVersionInfo:
    """Point ``alias`` (default ``"champion"``) at ``version`` of ``name``.

    The alias moves: the version that held it before loses it. Serve ``models:/NAME@champion``
    and every restart picks up the promoted version.

    Parameters
    ----------
    name : str
        Registered model name.
    version : int or str
        Version number, or an alias naming one (``promote("churn", "candidate")``).
    alias : str
        The alias to set.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.track.promote("churn", 3).aliases                  # doctest: +SKIP
    ('champion',)
    """
    _check_model_name(name)
    _check_alias(alias)
    client = _client()
    rm = _registered(client, name)
    aliases = {a: str(v) for a, v in (rm.aliases or {}).items()}
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise ConfigError(f"version must be a number or an alias, but got {version!r}")
    ref = str(version).strip()
    if ref in aliases:
        ref = aliases[ref]
    elif not ref.isdigit():
        raise TrackingError(
            f"{name!r} has no alias {ref!r}; aliases: {_known(sorted(aliases))}"
        )
    try:
        client.get_model_version(name, ref)
    except Exception as exc:
        if _not_found(exc):
            versions = sorted(int(v.version) for v in _versions(client, name))
            raise TrackingError(
                f"{name!r} has no version {ref}; versions: {_known([str(v) for v in versions])}"
            ) from None
        raise
    _store.retry_locked(client.set_registered_model_alias, name, alias, ref)
    return _info(client, client.get_model_version(name, ref))


def list_models(name: str | None = None) -> ModelVersions:
    """Registered model versions with their aliases (newest first per model).

    Listings in mlkit are ``list_<things>()`` (:func:`mlkit.serve.list_servers`,
    :func:`mlkit.jobs.list_runs`); one that is not a DataFrame itself gives its table by
    ``to_pandas()``.

    Parameters
    ----------
    name : str, optional
        Only this model's versions.

    Examples
    --------
    >>> import mlkit
    >>> mlkit.track.list_models()                                # doctest: +SKIP
    model  version  aliases    run                               status  created
    churn  2        champion   3f2...                            READY   2026-11-20 10:00:00
    churn  1        candidate  9a1...                            READY   2026-11-20 09:58:00
    """
    client = _client()
    if name is not None:
        _check_model_name(name)
        registered = [_registered(client, name)]
    else:
        registered = _all_registered(client)
    out = ModelVersions()
    for rm in sorted(registered, key=lambda m: m.name):
        by_version: dict[str, list[str]] = {}
        for alias, v in (rm.aliases or {}).items():
            by_version.setdefault(str(v), []).append(alias)
        for mv in sorted(_versions(client, rm.name), key=lambda v: -int(v.version)):
            out.append(_info(client, mv, by_version))
    return out


def models(name: str | None = None) -> ModelVersions:
    """Deprecated name of :func:`list_models` (listings are ``list_<things>()``)."""
    import warnings

    warnings.warn("mlkit.track.models() is now mlkit.track.list_models()", DeprecationWarning,
                  stacklevel=2)
    return list_models(name)
