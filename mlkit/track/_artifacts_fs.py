"""fsspec over a tracking server's artifact proxy: ``mlflow-artifacts://HOST:PORT/path``.

A server started with ``--serve-artifacts`` stores files for anyone who can reach it over HTTP
(``GET``/``PUT``/``DELETE /api/2.0/mlflow-artifacts/artifacts/<path>``, a listing at
``?path=<folder>``). mlkit's tracking server is reachable from every worker, so when no shared
store is set its artifact store is where checkpoints and the mlkit home's data folders go: this
filesystem lets the fsspec code that writes them to ``s3://`` write there too. Credentials:
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` from the environment (what the
tracking plugin gives the workers).

Registered with fsspec as ``mlflow-artifacts`` through the ``fsspec.specs`` entry point, so every
process with mlkit installed (the workers too) resolves such URLs. MLflow itself reads the same
URI form (``mlflow-artifacts://HOST:PORT/path``) with its own client.

Examples
--------
>>> import fsspec                                                          # doctest: +SKIP
>>> with fsspec.open("mlflow-artifacts://127.0.0.1:5000/store/a.txt", "w") as f:  # doctest: +SKIP
...     f.write("hello")
"""

from __future__ import annotations

import io
import os
from typing import Any
from urllib.parse import quote

from fsspec.spec import AbstractFileSystem

__all__ = ["ArtifactsFileSystem"]

_API = "/api/2.0/mlflow-artifacts/artifacts"


class _Upload(io.BytesIO):
    """A file opened for writing: one PUT of the whole content when it is closed."""

    def __init__(self, fs: ArtifactsFileSystem, path: str) -> None:
        super().__init__()
        self._fs, self._path = fs, path

    def close(self) -> None:
        if not self.closed:
            self._fs.pipe_file(self._path, self.getvalue())
        super().close()


class ArtifactsFileSystem(AbstractFileSystem):
    """The artifact proxy of an MLflow tracking server as an fsspec filesystem.

    Paths are ``HOST:PORT/folder/file`` (the URL without ``mlflow-artifacts://``).
    """

    protocol = "mlflow-artifacts"
    root_marker = ""

    def __init__(self, *args: Any, timeout: float = 120.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout
        self._session: Any = None

    # -- plumbing ------------------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith("mlflow-artifacts://"):
            text = text[len("mlflow-artifacts://"):]
        return text.rstrip("/")

    def unstrip_protocol(self, name: str) -> str:
        return f"mlflow-artifacts://{self._strip_protocol(name)}"

    def _http(self) -> Any:
        if self._session is None:
            import requests

            s = requests.Session()
            s.trust_env = False  # the cluster's own addresses: never through a proxy
            self._session = s
        return self._session

    @staticmethod
    def _auth() -> tuple[str, str] | None:
        # Read on every request: fsspec caches this instance, the credentials may change.
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        return (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")) if user else None

    def _split(self, path: str) -> tuple[str, str]:
        path = self._strip_protocol(path)
        netloc, _, rel = path.partition("/")
        if not netloc:
            raise ValueError(f"mlflow-artifacts path {path!r} names no server (HOST:PORT/...)")
        return f"http://{netloc}", rel

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        base, rel = self._split(path)
        url = f"{base}{_API}/{quote(rel)}" if rel or method != "GET" else f"{base}{_API}"
        resp = self._http().request(method, url, timeout=self.timeout, auth=self._auth(),
                                    **kwargs)
        if resp.status_code == 404:
            raise FileNotFoundError(path)
        if resp.status_code in (401, 403):
            raise PermissionError(f"{method} {path}: HTTP {resp.status_code} (set "
                                  "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)")
        resp.raise_for_status()
        return resp

    # -- the filesystem ------------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        base, rel = self._split(path)
        resp = self._http().get(f"{base}{_API}", params={"path": rel} if rel else {},
                                timeout=self.timeout, auth=self._auth())
        if resp.status_code in (401, 403):
            raise PermissionError(f"listing {path}: HTTP {resp.status_code} (set "
                                  "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)")
        resp.raise_for_status()
        files = resp.json().get("files", [])
        out = [{"name": f"{path}/{f['path']}", "type": "directory" if f.get("is_dir") else "file",
                "size": int(f.get("file_size", 0) or 0)} for f in files]
        if not out and rel:
            # An empty listing is a missing or empty folder, or a file: its parent tells.
            match = [f for f in self.ls(path.rpartition("/")[0]) if f["name"] == path]
            if not match:
                raise FileNotFoundError(path)
            if match[0]["type"] == "file":
                out = match
        return out if detail else [f["name"] for f in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        parent, _, _ = path.rpartition("/")
        if "/" not in path:
            return {"name": path, "type": "directory", "size": 0}
        try:
            for f in self.ls(parent, detail=True):
                if f["name"] == path:
                    return f
        except FileNotFoundError:
            pass
        raise FileNotFoundError(path)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        data = self._call("GET", path).content
        return data[start:end] if start is not None or end is not None else data

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        self._call("PUT", path, data=value)

    def put_file(self, lpath: str, rpath: str, **kwargs: Any) -> None:
        with open(lpath, "rb") as f:
            self._call("PUT", rpath, data=f)

    def get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        resp = self._call("GET", rpath, stream=True)
        with open(lpath, "wb") as f:
            for chunk in resp.iter_content(1 << 20):
                f.write(chunk)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        # The proxy has no copy or rename: the bytes go through this process (staged data
        # folders become final this way, one part file at a time).
        self.pipe_file(self._strip_protocol(path2), self.cat_file(path1))

    def rm_file(self, path: str) -> None:
        self.info(path)  # FileNotFoundError for a missing file, as fsspec expects
        self._call("DELETE", path)

    def _rm(self, path: str) -> None:
        self._call("DELETE", path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        pass  # folders exist once a file is in them

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        pass

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, autocommit: bool = True,
              cache_options: Any = None, **kwargs: Any) -> Any:
        if "r" in mode:
            return io.BytesIO(self.cat_file(path))
        if "w" in mode:
            return _Upload(self, self._strip_protocol(path))
        raise NotImplementedError(f"mode {mode!r} on {path}: read ('rb') or write ('wb') only")
