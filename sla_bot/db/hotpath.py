"""The webhook's one INSERT on a raw DBAPI connection: same SQL, a fraction of the CPU.

Profiling the request path (docs/performance.md) showed SQLAlchemy's per-execution machinery
(pool check-out and reset, execution context, result wrapping) costing more CPU than parsing
and validating the body. Here the Core statement is compiled once per engine and run on a DBAPI
connection each thread keeps for itself. The transaction rules are unchanged: SQLite takes the
same OS writer locks as `write_transaction` and BEGIN IMMEDIATE; the call returns only after
COMMIT. Driver errors come back as SQLAlchemy's exceptions (parameters hidden), so callers
handle them as before.

Group commit on SQLite: the connection commits with `synchronous=NORMAL` and the WAL is synced
after the writer lock is released, shared with whoever commits at the same moment
(`sla_bot.db.walsync`); the acknowledgement still means the row is on disk. PostgreSQL groups
WAL flushes itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql import Executable

from sla_bot.db.engine import sqlite_file, writer_locks
from sla_bot.db.walsync import WalSyncs


class CompiledStatement:
    """A Core statement compiled for one dialect, with its bind processors (types applied)."""

    def __init__(self, stmt: Executable, engine: Engine) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names: list[str] = list(compiled.positiontup or []) if compiled.positional else []
        # The dialect's own type (SQLite's DATETIME formats the stored text; a TypeDecorator's
        # bind_processor alone stops at its process_bind_param), as SQLAlchemy would run it.
        self.processors: dict[str, Callable[[Any], Any] | None] = {
            name: bind.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
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
        self.syncs = WalSyncs.of(path) if path and full else None
        self._held_lock = threading.Lock()
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
        with self._held_lock:
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
        if self.syncs is not None:
            fairy.dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # WalSyncs syncs
        if not self.sqlite:
            # One statement is its own transaction, committed (WAL flushed) before the answer:
            # no BEGIN and COMMIT round trips. This connection never goes back to the pool.
            fairy.dbapi_connection.autocommit = True
        self._local.held = (os.getpid(), fairy, fairy.dbapi_connection)
        with self._held_lock:
            self._held.append((os.getpid(), fairy))
        return fairy.dbapi_connection, True

    def _drop(self) -> None:
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None and held[0] == os.getpid():
            with self._held_lock:
                self._held = [h for h in self._held if h[1] is not held[1]]
            with contextlib.suppress(Exception):  # already broken; a new one comes next time
                held[1].invalidate()

    def run(self, work: Callable[[Any], Any]) -> Any:
        """Run `work(cursor)` committed; return what it returns.

        On SQLite, `work` runs in one transaction. On PostgreSQL each statement commits on its
        own (autocommit), so `work` must write with a single statement (the webhook's INSERT
        ... ON CONFLICT DO NOTHING; the SELECT of an existing row only reads).

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
        if self.syncs is not None:
            try:
                self.syncs.ready()
            except OSError as exc:
                raise OperationalError("the WAL sync file", None, exc) from exc
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
