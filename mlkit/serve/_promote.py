"""Alias routes follow their alias: promoting a version moves traffic with zero dropped requests.

A route served from ``models:/NAME@ALIAS`` remembers the alias. The gateway's watcher asks the
registry every ``alias_poll_s`` seconds (and at once on ``POST /admin/refresh``, which
``GatewayServer.refresh()`` calls) which version the alias points at. When it moved:

1. the new version's model folder is fetched (as ``serve.start`` does) and a new pool of
   replicas is started beside the old one, with the same settings (local or on the cluster);
   the old pool keeps answering meanwhile;
2. once every new replica answers ``/ping``, the route is swapped in one step of the event loop:
   ``/models/NAME/ALIAS`` (and ``/models/NAME``) now lead to the new version, also served as
   ``/models/NAME/NEW_VERSION``; the old route object points at its successor
   (``replaced_by``), so a request that looked the route up before the swap and reaches the
   replicas after it goes to the new version instead of a stopped pool;
3. the old pool drains (requests in flight finish on it) and is stopped.

If the new version cannot be served (no files, a replica that does not start) the old one keeps
serving, the reason goes to the gateway's log, and that version is not tried again until the
alias moves once more (or a refresh is asked for).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["AliasWatcher"]


def _alias_version(tracking_uri: str | None, name: str, alias: str) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    return str(client.get_model_version_by_alias(name, alias).version)


def _fetch(spec: dict[str, Any], version: str) -> str:
    from mlkit.serve._models import resolve
    from mlkit.serve._server import _model_folder

    uri = spec.get("tracking_uri")
    ref = resolve(f"models:/{spec['registered']}/{version}", uri)
    return _model_folder(ref, Path(spec["log_dir"]) / f"model-v{version}", uri)


class AliasWatcher:
    """Keeps each alias route of ``gateway`` on the version its alias points at."""

    def __init__(self, gateway: Any, poll_s: float = 5.0) -> None:
        self.gw = gateway
        self.poll_s = float(poll_s)
        self._wake = asyncio.Event()
        self._skip: dict[tuple[str, str], str] = {}  # version that failed to start, per alias
        self._task: asyncio.Task | None = None
        self.promotions: list[dict[str, Any]] = []

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def refresh(self) -> list[dict[str, Any]]:
        """Check every alias now; returns the promotions this check made."""
        self._skip.clear()
        return await self.check()

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - a registry hiccup must not end watching
                print(f"mlkit gateway: alias check failed: {exc!r}", file=sys.stderr, flush=True)
            await asyncio.sleep(self.poll_s)

    async def check(self) -> list[dict[str, Any]]:
        done = []
        for route in self.gw._unique_routes():
            alias = route.spec.get("alias")
            if not alias or route.replaced_by is not None:
                continue
            name = route.spec["registered"]
            try:
                version = await asyncio.to_thread(_alias_version, route.spec.get("tracking_uri"),
                                                  name, alias)
            except Exception as exc:  # noqa: BLE001 - the alias was deleted, store unreachable
                print(f"mlkit gateway: cannot read {name}@{alias}: {exc!r}", file=sys.stderr,
                      flush=True)
                continue
            if version == route.version or self._skip.get((name, alias)) == version:
                continue
            moved = await self.promote(route, version)
            if moved is not None:
                done.append(moved)
        return done

    async def promote(self, old: Any, version: str) -> dict[str, Any] | None:
        gw = self.gw
        alias = old.spec["alias"]
        t0 = time.monotonic()
        print(f"mlkit gateway: {old.name}@{alias} moved to version {version} (serving "
              f"{old.version}): starting it", file=sys.stderr, flush=True)
        try:
            spec = dict(old.spec)
            spec["model_path"] = await asyncio.to_thread(_fetch, spec, version)
            spec["version"], spec["labels"] = version, [alias, version]
            spec["model"] = f"models:/{spec['registered']}/{version}"
            if spec.get("route_id"):
                import secrets

                spec["route_id"] = secrets.token_hex(6)
            pool = gw._make_pool(spec)
            await pool.start(timeout=float(spec.get("start_timeout", 180.0)))
        except Exception as exc:  # noqa: BLE001 - the old version keeps serving
            self._skip[(old.spec["registered"], alias)] = version
            print(f"mlkit gateway: version {version} of {old.name} could not be served, "
                  f"{old.version} stays: {exc}", file=sys.stderr, flush=True)
            return None
        new = await gw.swap_route(old, spec, pool)
        if new is None:  # the route was removed while the new version started
            await pool.stop()
            return None
        # drain: what is in flight on the old replicas finishes there
        deadline = time.monotonic() + gw.request_timeout
        while any(r.inflight for r in old.pool.replicas) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await old.pool.stop()
        info = {"name": old.name, "alias": alias, "from": old.version, "to": version,
                "seconds": round(time.monotonic() - t0, 2)}
        self.promotions.append(info)
        print(f"mlkit gateway: {old.name}@{alias} now serves version {version} "
              f"({info['seconds']} s)", file=sys.stderr, flush=True)
        return info
