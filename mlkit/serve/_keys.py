"""API keys for the serving gateway: created once, stored hashed under the mlkit home.

A key looks like ``mlk_<id>_<secret>`` (``secrets.token_urlsafe``: 256 random bits). Only its
SHA-256 is stored, in ``<home>/serve/keys.json`` (mode 0600, rewritten atomically under a
lock): a leaked file gives no usable key. A salted slow hash (bcrypt, scrypt) protects
low-entropy passwords; a 256-bit random token needs none, and a fast hash keeps the check cheap
on every request. The gateway re-reads the file when it changes, so a revoked key stops working
within a second, without a restart.

Examples
--------
>>> info = create("ci-client", rate_limit="100/minute")     # doctest: +SKIP
>>> info["key"]                                             # doctest: +SKIP
'mlk_3f2a9c1e_...'
>>> revoke("ci-client")                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlkit._fs import atomic_write, lock
from mlkit.exceptions import ServeError

__all__ = ["create", "list_keys", "revoke", "keys_path", "KeyStore", "parse_rate", "KEY_RE"]

KEY_RE = re.compile(r"^mlk_([0-9a-f]{8})_[A-Za-z0-9_-]{20,100}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.IGNORECASE)
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
            "hour": 3600}


def keys_path(home: str | Path | None = None) -> Path:
    """``<home>/serve/keys.json`` (the folder is created)."""
    from mlkit import config

    folder = config.home("serve") if home is None else Path(home) / "serve"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "keys.json"


def parse_rate(text: str | None) -> tuple[int, float] | None:
    """``"100/minute"`` -> ``(100, 60.0)``; None for no limit.

    Examples
    --------
    >>> parse_rate("10/s"), parse_rate("100/minute"), parse_rate(None)
    ((10, 1.0), (100, 60.0), None)
    """
    if text is None or text == "":
        return None
    match = _RATE_RE.match(str(text))
    if not match or int(match.group(1)) < 1:
        raise ServeError(
            f"rate limit must look like '10/second', '100/minute' or '1000/hour', got {text!r}"
        )
    return int(match.group(1)), float(_PERIODS[match.group(2).lower()])


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _locked(path: Path) -> contextlib.AbstractContextManager[Path]:
    return lock(path.with_suffix(".lock"))


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ServeError(f"the key file {path} cannot be read ({exc}); fix or remove it") from None
    keys = data.get("keys", {}) if isinstance(data, dict) else {}
    return {k: v for k, v in keys.items() if isinstance(v, dict)}


def _save(path: Path, keys: dict[str, dict[str, Any]]) -> None:
    atomic_write(path, json.dumps({"keys": keys}, indent=2, sort_keys=True), mode=0o600)


def create(name: str, rate_limit: str | None = None,
           home: str | Path | None = None) -> dict[str, Any]:
    """Create an API key called ``name``; the returned ``key`` is shown only this once.

    Parameters
    ----------
    name : str
        A label for the client (unique among the keys that are not revoked).
    rate_limit : str, optional
        Requests allowed per key, e.g. ``"100/minute"``; over it the gateway answers 429 with
        ``Retry-After``.

    Examples
    --------
    >>> create("notebook")["key"].startswith("mlk_")      # doctest: +SKIP
    True
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ServeError(
            f"key name must be 1-64 letters, digits, '.', '_', '@' or '-', got {name!r}"
        )
    parse_rate(rate_limit)
    path = keys_path(home)
    with _locked(path):
        keys = _load(path)
        if any(v["name"] == name and not v.get("revoked") for v in keys.values()):
            raise ServeError(f"an API key named {name!r} exists already: revoke it first or "
                             "choose another name")
        key_id = secrets.token_hex(4)
        while key_id in keys:
            key_id = secrets.token_hex(4)
        key = f"mlk_{key_id}_{secrets.token_urlsafe(32)}"
        record = {
            "name": name, "sha256": _digest(key), "rate_limit": rate_limit, "revoked": None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        keys[key_id] = record
        _save(path, keys)
    return {"id": key_id, "key": key, **{k: v for k, v in record.items() if k != "sha256"}}


def list_keys(home: str | Path | None = None) -> list[dict[str, Any]]:
    """Every key's id, name, rate limit, creation and revocation time (never the key).

    Examples
    --------
    >>> [k["name"] for k in list_keys()]      # doctest: +SKIP
    ['notebook']
    """
    path = keys_path(home)
    return [{"id": k, **{f: v for f, v in r.items() if f != "sha256"}}
            for k, r in sorted(_load(path).items(), key=lambda kv: kv[1].get("created", ""))]


def revoke(name_or_id: str, home: str | Path | None = None) -> list[str]:
    """Revoke the key(s) with this name or id; returns the revoked ids.

    Examples
    --------
    >>> revoke("notebook")      # doctest: +SKIP
    ['3f2a9c1e']
    """
    path = keys_path(home)
    with _locked(path):
        keys = _load(path)
        hits = [k for k, r in keys.items()
                if (k == name_or_id or r["name"] == name_or_id) and not r.get("revoked")]
        if not hits:
            names = sorted({r["name"] for r in keys.values() if not r.get("revoked")})
            raise ServeError(f"no active API key named {name_or_id!r} (active: {names or 'none'})")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for k in hits:
            keys[k]["revoked"] = now
        _save(path, keys)
    return hits


class KeyStore:
    """The gateway's view of the key file, re-read when the file changes (checked each second).

    ``check(key)`` returns ``("ok", id, rate)``, ``("unknown", None, None)`` or
    ``("revoked", id, None)``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: Any = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._checked = 0.0

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            try:
                self._keys = _load(self.path) if stamp else {}
                self._stamp = stamp
            except ServeError:
                pass  # a half-written file is replaced atomically; keep the last good view

    def check(self, key: str) -> tuple[str, str | None, tuple[int, float] | None]:
        self._refresh()
        match = KEY_RE.match(key)
        record = self._keys.get(match.group(1)) if match else None
        if record is None or not hmac.compare_digest(record.get("sha256", ""), _digest(key)):
            return "unknown", None, None
        assert match is not None
        if record.get("revoked"):
            return "revoked", match.group(1), None
        try:
            rate = parse_rate(record.get("rate_limit"))
        except ServeError:
            rate = None
        return "ok", match.group(1), rate
