"""Champion / challenger at the gateway: a weighted split sticky per routing key, or shadowing.

A split is set on a route (the champion) and names another route of the same gateway (the
challenger):

- **split** (``shadow=False``): a share ``weight`` of the champion's requests is answered by the
  challenger. The choice is a hash of the routing key (a header such as ``x-user-id``, or a
  column of the request's first row), so one user always sees the same model; requests without
  a key are assigned at random with the same weight.
- **shadow** (``shadow=True``): every request is answered by the champion; a copy goes to the
  challenger in the background and both answers are appended to ``shadow.jsonl`` beside the
  gateway's log (one JSON line per request: time, request id, both statuses and bodies). The
  challenger's answer is never returned.

Examples
--------
>>> s = Split("demo/2", weight=0.25, key="header:x-user-id")
>>> s.routing_key({"x-user-id": "alice"}, b"") is not None
True
>>> 0.0 <= s.bucket("alice") < 1.0
True
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

__all__ = ["Split", "parse_key"]


def parse_key(key: str | None) -> tuple[str, str] | None:
    """``"header:x-user-id"`` -> ``("header", "x-user-id")``; ``"column:user"``; None.

    Examples
    --------
    >>> parse_key("header:X-User"), parse_key("column:user_id"), parse_key(None)
    (('header', 'x-user'), ('column', 'user_id'), None)
    """
    if key is None or key == "":
        return None
    kind, sep, name = str(key).partition(":")
    if not sep or kind not in ("header", "column") or not name:
        raise ValueError(f"sticky routing key must be 'header:NAME' or 'column:NAME', got {key!r}")
    return kind, name.lower() if kind == "header" else name


class Split:
    """The split of one champion route (see the module docstring)."""

    def __init__(self, challenger: str, weight: float, key: str | None = None,
                 shadow: bool = False, log_path: str | Path | None = None) -> None:
        if not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"weight must be in 0..1, got {weight!r}")
        self.challenger = challenger
        self.weight = float(weight)
        self.key = parse_key(key)
        self.shadow = bool(shadow)
        self.log_path = Path(log_path) if log_path else None

    def describe(self) -> dict[str, Any]:
        return {"challenger": self.challenger, "weight": self.weight, "shadow": self.shadow,
                "key": ":".join(self.key) if self.key else None}

    def routing_key(self, headers: dict[str, str], body: bytes) -> str | None:
        if self.key is None:
            return None
        kind, name = self.key
        if kind == "header":
            return headers.get(name)
        try:  # the first row's value of that column (dataframe_records or dataframe_split)
            data = json.loads(body)
            if "dataframe_records" in data:
                return str(data["dataframe_records"][0][name])
            split = data["dataframe_split"]
            return str(split["data"][0][split["columns"].index(name)])
        except Exception:  # noqa: BLE001 - no usable key: assigned at random
            return None

    @staticmethod
    def bucket(key: str) -> float:
        """A stable number in [0, 1) for ``key`` (the same on every gateway and restart)."""
        digest = hashlib.sha256(key.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def to_challenger(self, key: str | None) -> bool:
        if self.shadow:
            return False
        value = self.bucket(key) if key is not None else random.random()
        return value < self.weight

    def log(self, rid: str, champion: tuple[int, bytes], challenger: tuple[int, bytes] | None,
            error: str | None = None) -> None:
        if self.log_path is None:
            return

        def text(b: bytes) -> Any:
            try:
                return json.loads(b)
            except ValueError:
                return b[:500].decode("utf-8", "replace")

        line = {"time": time.time(), "request_id": rid, "champion_status": champion[0],
                "champion": text(champion[1]),
                "challenger_status": challenger[0] if challenger else None,
                "challenger": text(challenger[1]) if challenger else None, "error": error,
                "challenger_route": self.challenger}
        with open(self.log_path, "a") as out:
            out.write(json.dumps(line) + "\n")
