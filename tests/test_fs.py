"""mlkit._fs: atomic writes leave the old file or the new one; locks serialize real processes."""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import stat

import filelock
import pytest

from mlkit._fs import atomic_path, atomic_write, lock

# Real processes, started by fork: the children run functions of this module without importing
# it again (pytest's importlib mode gives it no importable name for spawn).
_ctx = multiprocessing.get_context("fork")


def _write_past_a_size_limit(path: str, size: int) -> None:
    # A real failure in the middle of the write: the kernel refuses to grow any file of this
    # process past 4 KiB (EFBIG), as a full disk would, after part of the data went out.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        atomic_write(path, b"x" * size)
    except OSError as exc:
        os._exit(0 if exc.errno == 27 else 2)  # EFBIG: the failure we meant
    os._exit(1)


def test_a_write_that_fails_midway_leaves_the_old_content_and_no_temp_file(tmp_path):
    target = tmp_path / "servers.json"
    atomic_write(target, '{"old": true}')
    child = _ctx.Process(target=_write_past_a_size_limit, args=(str(target), 1 << 20))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "the write should have failed with EFBIG inside atomic_write"
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["servers.json"]


def test_a_writer_that_raises_leaves_the_old_content_and_no_temp_file(tmp_path):
    target = tmp_path / "round-000010.ubj"
    target.write_bytes(b"old model")
    with pytest.raises(RuntimeError, match="writer crashed"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".ubj" and tmp.name.startswith(".")
        tmp.write_bytes(b"half a mod")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old model"
    assert [p.name for p in tmp_path.iterdir()] == ["round-000010.ubj"]


def test_unencodable_text_fails_before_anything_is_written(tmp_path):
    target = tmp_path / "note.txt"
    with pytest.raises(UnicodeEncodeError):
        atomic_write(target, "caf\u00e9", encoding="ascii")
    assert list(tmp_path.iterdir()) == []


def test_a_secret_is_0600_whatever_the_umask_and_a_plain_file_follows_it(tmp_path):
    old = os.umask(0)
    try:
        secret = atomic_write(tmp_path / "keys.json", "{}", mode=0o600)
        plain = atomic_write(tmp_path / "profile.json", "{}")
        with atomic_path(tmp_path / "token", mode=0o600) as tmp:
            tmp.write_text("t")
    finally:
        os.umask(old)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert stat.S_IMODE(plain.stat().st_mode) == 0o666  # umask 0: what open() gives
    # an existing file's wider mode does not survive a rewrite as a secret
    plain.chmod(0o644)
    atomic_write(plain, "{}", mode=0o600)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600


def _hold(lock_path: str, held, release) -> None:
    with lock(lock_path):
        held.set()
        release.wait(120)


def test_a_lock_held_by_another_process_blocks_until_released(tmp_path):
    lock_path = tmp_path / "keys.lock"
    held, release = _ctx.Event(), _ctx.Event()
    holder = _ctx.Process(target=_hold, args=(str(lock_path), held, release))
    holder.start()
    try:
        assert held.wait(60), "the holder never took the lock"
        with pytest.raises(TimeoutError), lock(lock_path, timeout=0.3):
            pass
        release.set()
        with lock(lock_path, timeout=60):  # free once the holder is done
            assert lock_path.exists()
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0
    assert issubclass(filelock.Timeout, TimeoutError)


def _increment(counter: str, lock_path: str, times: int) -> None:
    for _ in range(times):
        with lock(lock_path):
            value = int(open(counter).read())
            atomic_write(counter, str(value + 1))


def test_read_modify_write_under_the_lock_loses_no_update_across_processes(tmp_path):
    counter, lock_path = tmp_path / "count", tmp_path / "count.lock"
    atomic_write(counter, "0")
    workers = [_ctx.Process(target=_increment, args=(str(counter), str(lock_path), 25))
               for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert counter.read_text() == "100"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["count", "count.lock"]
