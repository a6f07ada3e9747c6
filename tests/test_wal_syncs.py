"""Shared WAL syncs (group commit on SQLite, `sla_bot.db.walsync.WalSyncs`).

A webhook is acknowledged after `sync(n)` returns, so `sync(n)` may return only once an
fdatasync that began after commit `n` has finished. os.fdatasync is the OS edge: it is wrapped
to record, for each sync, the last commit number when it began and when it ended.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from sla_bot.db import walsync
from sla_bot.db.walsync import WalSyncs


def _syncs_with_a_wal(tmp_path: Path) -> WalSyncs:
    database = tmp_path / "db.sqlite"
    Path(f"{database}-wal").write_bytes(b"frames")
    return WalSyncs(str(database))


@pytest.fixture
def syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[WalSyncs, list[tuple[int, float, float]]]:
    shared = _syncs_with_a_wal(tmp_path)
    done: list[tuple[int, float, float]] = []  # (last commit number at start, start, end)
    real = os.fdatasync

    def recording_fdatasync(fd: int) -> None:
        last = shared.numbers()[0]
        start = time.perf_counter()
        real(fd)
        time.sleep(0.002)  # a slow disk: others commit and queue meanwhile
        done.append((last, start, time.perf_counter()))

    monkeypatch.setattr(walsync.os, "fdatasync", recording_fdatasync)
    return shared, done


def test_a_covered_commit_needs_no_sync_of_its_own(syncs) -> None:  # type: ignore[no-untyped-def]
    shared, done = syncs
    first = shared.committed()
    shared.sync(first)
    assert len(done) == 1
    shared.sync(first)
    assert len(done) == 1  # already covered
    second, third = shared.committed(), shared.committed()
    shared.sync(third)
    shared.sync(second)  # the sync for `third` began after `second`
    assert len(done) == 2
    fourth = shared.committed()
    shared.sync(fourth)
    assert len(done) == 3


def test_every_return_follows_a_sync_that_began_after_the_commit(syncs) -> None:  # type: ignore[no-untyped-def]
    shared, done = syncs
    returned: list[tuple[int, float]] = []
    commit_lock = threading.Lock()  # the SQLite writer lock, in the real path

    def request() -> None:
        for _ in range(25):
            with commit_lock:
                number = shared.committed()
            shared.sync(number)
            returned.append((number, time.perf_counter()))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(returned) == 200
    for number, at in returned:
        assert any(last >= number and end <= at for last, _start, end in done), number
    assert len(done) < 200  # shared: fewer syncs than commits


def test_processes_share_the_counters(syncs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shared, done = syncs
    mine = shared.committed()
    pid = os.fork()
    if pid == 0:  # the child: another web process, committing and syncing after us
        try:
            other = WalSyncs(shared.path.removesuffix("-sync"))
            other.sync(other.committed())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    shared.sync(mine)  # covered by the child's sync, which began after our commit
    assert done == []


def test_a_commit_made_during_a_sync_is_not_counted_as_covered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _syncs_with_a_wal(tmp_path)
    during: list[int] = []
    real = os.fdatasync

    def fdatasync_while_another_process_commits(fd: int) -> None:
        real(fd)
        if not during:
            during.append(shared.committed())  # its frames may postdate this sync

    monkeypatch.setattr(walsync.os, "fdatasync", fdatasync_while_another_process_commits)
    shared.sync(shared.committed())
    assert shared.numbers() == (2, 1)
    shared.sync(during[0])
    assert shared.numbers() == (2, 2)


def test_a_deleted_wal_syncs_the_database_and_frees_the_lock(tmp_path: Path) -> None:
    """SQLite deletes the WAL when the last connection closes; the sync after that must
    release the shared lock (it once closed the wrong descriptor and kept it: every later sync
    in every process waited for ever)."""
    database = tmp_path / "db.sqlite"
    database.write_bytes(b"")
    shared = WalSyncs(str(database))
    shared.sync(shared.committed())  # no -wal file: syncs the database file
    probe = os.open(shared.path, os.O_RDWR)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: raises if still held
    finally:
        os.close(probe)
    assert shared.numbers() == (1, 1)


def test_a_holder_that_never_lets_go_cannot_stall_a_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _syncs_with_a_wal(tmp_path)
    shared.ready()
    stuck = os.open(shared.path, os.O_RDWR)  # another process, stopped while holding the lock
    fcntl.flock(stuck, fcntl.LOCK_EX)
    monkeypatch.setattr(walsync, "LOCK_WAIT", 0.2)
    try:
        started = time.monotonic()
        shared.sync(shared.committed())  # syncs alone once the wait is up
        assert time.monotonic() - started < 5
    finally:
        os.close(stuck)
