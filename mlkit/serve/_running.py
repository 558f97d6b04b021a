"""The record of running servers (scoring servers, gateways, the tracking server): one JSON file
under the mlkit home.

``serve.start`` records every server it launches (name, pid, process group, port, model, start
time) so ``%mlscale serve list`` / ``stop`` find them again after a kernel restart. Entries whose
process has died (or whose pid now belongs to another program) are pruned on every read.

The file is rewritten atomically (:func:`mlkit._fs.atomic_write`) under an exclusive lock on a
sibling lock file (:func:`mlkit._fs.lock`), so two kernels starting servers at once cannot lose
an entry.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlkit import config
from mlkit._fs import atomic_write, lock

__all__ = ["running_path", "read", "add", "remove", "is_alive", "group_members", "locked",
           "identity", "start_ticks"]

_FILE = "servers.json"


def running_path(home: str | Path | None = None) -> Path:
    """Path of the registry file (``<home>/servers/servers.json``; default: the mlkit home)."""
    if home is None:
        return config.home("servers") / _FILE
    folder = Path(home) / "servers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / _FILE


@contextlib.contextmanager
def locked(home: str | Path | None = None) -> Iterator[Path]:
    """Hold the registry's exclusive lock; yields the registry path."""
    path = running_path(home)
    with lock(path.with_suffix(".lock")):
        yield path


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22); None
    where there is no such process or no /proc.

    Together with the pid this names one process for good. psutil's ``create_time()`` adds the
    boot time, which Linux recomputes from the wall clock on every read: an NTP correction or a
    resumed VM moves it by a second, and a live server then looked like a recycled pid (its
    entry was pruned while it ran on). psutil keeps the tick count private, hence this reader.

    Examples
    --------
    >>> import os
    >>> start_ticks(os.getpid()) == start_ticks(os.getpid()) > 0
    True
    >>> start_ticks(2**22 + 1) is None            # above Linux's highest pid
    True
    """
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after its ')'
    try:
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def identity(pid: int) -> dict[str, Any]:
    """What an entry records to know its process again: ``create_time`` (wall clock, for people
    and for systems without /proc) and ``start_ticks`` (exact, immune to clock changes)."""
    import psutil

    return {"create_time": psutil.Process(pid).create_time(), "start_ticks": start_ticks(pid)}


def _same_process(pid: int, entry: dict[str, Any]) -> bool | None:
    """Whether ``pid`` still runs the process ``entry`` recorded; None when it has exited."""
    import psutil

    recorded_ticks = entry.get("start_ticks")
    if isinstance(recorded_ticks, int):
        now = start_ticks(pid)
        if now is not None:
            return now == recorded_ticks
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None
    # Entries without ticks (written by an older mlkit, or no /proc): the wall-clock time, with
    # room for the boot time's own drift.
    return abs(created - float(entry.get("create_time", 0))) < 5.0


def group_members(entry: dict[str, Any]) -> list[Any]:
    """Live processes (psutil) of the server's process group; empty when it is gone.

    Linux never reuses a pid while it still names a process group, so the group's members are
    the server's as long as its leader is either gone or is the very process recorded (same
    start time). A leader pid that now belongs to a newer process means the group is long
    gone: such a pid is never signalled.
    """
    import psutil

    try:
        pid, pgid = int(entry["pid"]), int(entry.get("pgid", entry["pid"]))
    except (KeyError, TypeError, ValueError):
        return []
    if _same_process(pid, entry) is False:
        return []
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def is_alive(entry: dict[str, Any]) -> bool:
    """True while any process of the recorded server still runs."""
    return bool(group_members(entry))


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        # A corrupt registry must not block serving; it only lists what mlkit started.
        return {}
    servers = data.get("servers", {}) if isinstance(data, dict) else {}
    return {k: v for k, v in servers.items() if isinstance(v, dict)}


def _save(path: Path, servers: dict[str, dict[str, Any]]) -> None:
    # 0600, as mkstemp always made it: the file is this user's list of processes
    atomic_write(path, json.dumps({"servers": servers}, indent=2, sort_keys=True), mode=0o600)


def read(prune: bool = True, home: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """All registered servers by name; dead ones are removed from the file first.

    Examples
    --------
    >>> sorted(read())    # doctest: +SKIP
    ['iris-champion']
    """
    with locked(home) as path:
        servers = _load(path)
        if prune:
            alive = {k: v for k, v in servers.items() if is_alive(v)}
            if alive != servers:
                _save(path, alive)
            servers = alive
        return servers


def add(entry: dict[str, Any], home: str | Path | None = None) -> None:
    """Record a running server (replaces a dead entry of the same name)."""
    with locked(home) as path:
        servers = _load(path)
        servers[entry["name"]] = entry
        _save(path, servers)


def remove(name: str, home: str | Path | None = None) -> None:
    """Forget a server (no error if it is not registered)."""
    with locked(home) as path:
        servers = _load(path)
        if servers.pop(name, None) is not None:
            _save(path, servers)
