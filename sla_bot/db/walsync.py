"""Shared fdatasync of a SQLite WAL: group commit across threads and processes.

With `synchronous=FULL`, SQLite fsyncs the WAL inside COMMIT, while it holds the one writer
lock, so every writer queues behind every other writer's fsync. sla-bot's writers instead
commit with `synchronous=NORMAL` (frames written, not synced) and, once the writer lock is
released, call `WalSyncs.sync` before returning: an fsync covers every frame written to the
file before it, whoever wrote them, so writers waiting at the same moment share one sync, and a
write still returns only once it is on disk (what FULL meant). Used by the webhook's hot path
(`sla_bot.db.hotpath`) and by every `write_transaction`.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time

LOCK_WAIT = 2.0  # seconds a sync waits for another's before syncing alone
_instances: dict[str, WalSyncs] = {}
_instances_lock = threading.Lock()


class WalSyncs:
    """Shared fdatasync of one SQLite WAL across threads and processes (group commit).

    A 16-byte file beside the database, mapped by every process, holds two counters: the
    number of the last commit (written under the SQLite writer lock, so in commit
    order) and the highest number a finished fdatasync covered. `sync(n)` queues on a file lock;
    whoever holds it either sees `n` already covered, or reads the last commit number, syncs
    the WAL, and records that number as covered: every commit up to it had written its frames
    before the number was taken, so the sync made them durable. A holder that dies releases the
    lock with its process and records nothing, so the next one syncs.
    """

    _FORMAT = struct.Struct("<QQ")

    @classmethod
    def of(cls, database: str) -> WalSyncs:
        """The one instance per database file in this process."""
        with _instances_lock:
            found = _instances.get(database)
            if found is None:
                found = _instances[database] = cls(database)
            return found

    def __init__(self, database: str) -> None:
        self.database = database
        self.wal = f"{database}-wal"
        self.path = f"{database}-sync"
        self._fds: dict[int, tuple[int, mmap.mmap]] = {}  # pid -> (lock fd, map)
        self._wal_fd: tuple[int, int, int] | None = None  # (pid, fd, inode)
        self._lock = threading.Lock()
        self._syncing = threading.Lock()  # a file lock does not exclude this process's threads

    def _shared(self) -> tuple[int, mmap.mmap]:
        held = self._fds.get(os.getpid())
        if held is None:
            with self._lock:
                held = self._fds.get(os.getpid())
                if held is None:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                    if os.fstat(fd).st_size < self._FORMAT.size:
                        os.ftruncate(fd, self._FORMAT.size)  # zeros: nothing committed yet
                    held = self._fds[os.getpid()] = (fd, mmap.mmap(fd, self._FORMAT.size))
        return held

    def ready(self) -> None:
        """Map the shared counters now, so that nothing can fail between COMMIT and the sync."""
        self._shared()

    def numbers(self) -> tuple[int, int]:
        """(last commit numbered, highest number a finished sync covered)."""
        return self._FORMAT.unpack_from(self._shared()[1])  # type: ignore[return-value]

    def committed(self) -> int:
        """Number this commit; call while holding the writer lock, right after COMMIT."""
        shared = self._shared()[1]
        number = self._FORMAT.unpack_from(shared)[0] + 1
        struct.pack_into("<Q", shared, 0, number)
        return number

    def sync(self, number: int) -> None:
        """Return once commit `number` is on disk (after an fdatasync that began after it).

        The file lock is polled, never waited on without end: a holder takes it for one
        fdatasync (~0.2 ms), a waiter returns as soon as a finished sync covers it, and one that
        cannot have the lock within LOCK_WAIT syncs alone (correct, only not shared).
        """
        lock_fd, shared = self._shared()
        deadline = time.monotonic() + LOCK_WAIT
        pause = 0.00005
        with self._syncing:
            while True:
                if self._FORMAT.unpack_from(shared)[1] >= number:
                    return
                try:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        self._sync_files()
                        return
                    time.sleep(pause)
                    pause = min(pause * 2, 0.001)
                    continue
                try:
                    last, covered = self._FORMAT.unpack_from(shared)
                    if covered < number:
                        self._sync_files()
                        struct.pack_into("<Q", shared, 8, max(last, number))
                finally:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
                return

    def _sync_files(self) -> None:
        try:
            os.fdatasync(self._wal())
        except FileNotFoundError:
            # SQLite deletes the WAL on the last connection's close, after checkpointing it
            # into the database file: sync that file instead (which also fails, loudly, if
            # this is not where the database lives).
            database = os.open(self.database, os.O_RDONLY)
            try:
                os.fsync(database)
            finally:
                os.close(database)

    def _wal(self) -> int:
        """The WAL's descriptor, reopened when SQLite replaced the file (a new inode)."""
        inode = os.stat(self.wal).st_ino
        held = self._wal_fd
        if held is None or held[0] != os.getpid() or held[2] != inode:
            if held is not None and held[0] == os.getpid():
                os.close(held[1])
            fd = os.open(self.wal, os.O_RDONLY)
            held = self._wal_fd = (os.getpid(), fd, os.fstat(fd).st_ino)
            # A new WAL file: its directory entry must be durable too.
            dir_fd = os.open(os.path.dirname(os.path.abspath(self.wal)), os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return held[1]
