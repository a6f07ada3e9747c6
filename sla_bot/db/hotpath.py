"""The webhook's one INSERT on a raw DBAPI connection: same SQL, a fraction of the CPU.

Profiling the request path (docs/performance.md) showed SQLAlchemy's per-execution machinery
(pool check-out and reset, execution context, result wrapping) costing more CPU than parsing
and validating the body. Here the Core statement is compiled once per engine and run on a DBAPI
connection each thread keeps for itself. The transaction rules are unchanged: SQLite takes the
same OS writer locks as `write_transaction` and BEGIN IMMEDIATE; the call returns only after
COMMIT. Driver errors come back as SQLAlchemy's exceptions (parameters hidden), so callers
handle them as before.

Group commit on SQLite: with `synchronous=FULL` every COMMIT fsyncs the WAL while holding the
single writer lock, so commits from the web processes queue behind each other's fsyncs. Here
the connection commits with `synchronous=NORMAL` (frames written, not synced) and, after the
writer lock is released, calls fdatasync on the WAL file before returning. An fsync covers
every frame written to the file before it, whoever wrote them, so concurrent requests share
syncs instead of queueing for them, and each request still returns only once its own commit is
on disk: the acknowledgement means what FULL meant. PostgreSQL groups WAL flushes itself.

The sync itself is shared too (`WalSyncs`): each commit takes a number under the writer lock,
and a request whose number a finished fdatasync already covered returns without its own. Of
the requests waiting at one moment, one syncs for all of them, so a burst costs a few
fdatasyncs instead of one each.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql import Executable

from sla_bot.db.engine import sqlite_file, writer_locks


class CompiledStatement:
    """A Core statement compiled for one dialect, with its bind processors (types applied)."""

    def __init__(self, stmt: Executable, engine: Engine) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names: list[str] = list(compiled.positiontup or []) if compiled.positional else []
        self.processors: dict[str, Callable[[Any], Any] | None] = {
            name: bind.type.bind_processor(engine.dialect)
            for name, bind in ((b.key, b) for b in compiled.binds.values())
        }

    def params(self, values: Mapping[str, Any]) -> Any:
        out = {}
        for name, value in values.items():
            process = self.processors.get(name)
            out[name] = process(value) if process is not None else value
        return tuple(out[n] for n in self.names) if self.positional else out


class HotWriter:
    """One DBAPI connection per thread (and process) for the request path's writes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        path = sqlite_file(engine)
        full = engine.__dict__.get("_sla_bot_synchronous", "FULL") == "FULL"
        self.wal = f"{path}-wal" if path and full else None
        self.syncs = WalSyncs(path) if path and full else None
        self._wal_lock = threading.Lock()
        self._held: list[tuple[int, Any]] = []  # (pid, fairy) of every thread, for close()

    @classmethod
    def of(cls, engine: Engine) -> HotWriter:
        writer = engine.__dict__.get("_sla_bot_hot_writer")
        if writer is None:
            writer = engine.__dict__["_sla_bot_hot_writer"] = cls(engine)
            event.listen(engine, "engine_disposed", lambda _engine: writer.close())
        return writer

    def close(self) -> None:
        """Close every thread's connection (with `engine.dispose()`): held connections are
        outside the pool, so disposing it would not reach them."""
        with self._wal_lock:
            held, self._held = self._held, []
        for pid, fairy in held:
            if pid == os.getpid():
                with contextlib.suppress(Exception):
                    fairy.invalidate()
        self._local = threading.local()

    def _connection(self) -> tuple[Any, bool]:
        """(DBAPI connection, fresh?). A fork gets its own: never share a parent's socket."""
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[2], False
        fairy = self.engine.raw_connection()  # pragmas and settings applied by the pool
        if self.wal is not None:
            fairy.dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # WalSyncs syncs
        self._local.held = (os.getpid(), fairy, fairy.dbapi_connection)
        with self._wal_lock:
            self._held.append((os.getpid(), fairy))
        return fairy.dbapi_connection, True

    def _drop(self) -> None:
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None and held[0] == os.getpid():
            with self._wal_lock:
                self._held = [h for h in self._held if h[1] is not held[1]]
            with contextlib.suppress(Exception):  # already broken; a new one comes next time
                held[1].invalidate()

    def run(self, work: Callable[[Any], Any]) -> Any:
        """Run `work(cursor)` in one committed transaction; return what it returns.

        A reused PostgreSQL connection that fails with a connection error (the server
        restarted) is replaced and the work retried once; the work must be idempotent, as the
        webhook INSERT is (a body already stored is not stored twice).
        """
        try:
            return self._run_once(work)
        except OperationalError as exc:
            if self.sqlite or not exc.connection_invalidated:
                raise
            return self._run_once(work)

    def _run_once(self, work: Callable[[Any], Any]) -> Any:
        result, number = self._transaction(work)
        if self.syncs is not None:
            try:
                self.syncs.sync(number)
            except OSError as exc:
                raise OperationalError("fdatasync of the WAL", None, exc) from exc
        return result

    def _transaction(self, work: Callable[[Any], Any]) -> tuple[Any, int]:
        dbapi = self.engine.dialect.loaded_dbapi
        with writer_locks(self.engine):
            conn, fresh = self._connection()
            try:
                cur = conn.cursor()
                try:
                    if self.sqlite:
                        cur.execute("BEGIN IMMEDIATE")
                    result = work(cur)
                    if self.sqlite:
                        cur.execute("COMMIT")
                    else:
                        conn.commit()
                    # Numbered while the writer lock is still held: in commit order.
                    return result, self.syncs.committed() if self.syncs is not None else 0
                finally:
                    cur.close()
            except dbapi.Error as exc:
                self._rollback(conn)
                broken = not self.sqlite and isinstance(exc, dbapi.OperationalError)
                if broken:
                    self._drop()
                raise DBAPIError.instance(
                    "hot path write",
                    None,
                    exc,
                    dbapi.Error,
                    hide_parameters=True,
                    connection_invalidated=broken and not fresh,
                    dialect=self.engine.dialect,
                ) from exc
            except BaseException:
                self._rollback(conn)
                raise

    def _rollback(self, conn: Any) -> None:
        try:
            if self.sqlite:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                conn.rollback()
        except Exception:  # noqa: BLE001 - the connection is dropped below if it is broken
            self._drop()


class WalSyncs:
    """Shared fdatasync of one SQLite WAL across threads and processes (group commit).

    A 16-byte file beside the database, mapped by every process, holds two counters: the
    number of the last hot-path commit (written under the SQLite writer lock, so in commit
    order) and the highest number a finished fdatasync covered. `sync(n)` queues on a file lock;
    whoever holds it either sees `n` already covered, or reads the last commit number, syncs
    the WAL, and records that number as covered: every commit up to it had written its frames
    before the number was taken, so the sync made them durable. A holder that dies releases the
    lock with its process and records nothing, so the next one syncs.
    """

    _FORMAT = struct.Struct("<QQ")

    def __init__(self, database: str) -> None:
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
        """Return once commit `number` is on disk (after an fdatasync that began after it)."""
        fd, shared = self._shared()
        with self._syncing:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                last, covered = self._FORMAT.unpack_from(shared)
                if covered >= number:
                    return
                os.fdatasync(self._wal())
                struct.pack_into("<Q", shared, 8, max(last, number))
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

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
