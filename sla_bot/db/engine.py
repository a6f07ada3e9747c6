"""Engine creation: SQLite in WAL mode with a short busy timeout, or PostgreSQL via psycopg 3."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from sla_bot.db.walsync import WalSyncs


def make_engine(
    url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 800, autocheckpoint: bool = True
) -> Engine:
    """Build an engine tuned for many short transactions from several processes.

    SQLite: WAL so readers never block the writer; `synchronous=FULL` by default so an
    acknowledged webhook survives power loss, not just a process crash; a busy timeout well
    inside HubSpot's 5 s answer budget so a locked database answers 503 fast.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
            poolclass=NullPool if parsed.database in (None, "", ":memory:") else None,
            hide_parameters=True,  # logs never carry CRM values (see sla_bot.logs.db_error)
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy own BEGIN so that "BEGIN IMMEDIATE" can be issued where needed.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            if not autocheckpoint:
                # Web connections leave checkpoints (copying the WAL back and fsyncing, tens of
                # ms inside some webhook's COMMIT) to the worker, which runs one every second;
                # 10,000 pages (~40 MB) is only a safety net for a web process without a worker.
                cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Read-then-write transactions ask for IMMEDIATE (see `immediate`) so they take the
            # write lock up front instead of failing on a lock upgrade; the rest stay deferred
            # so reads never queue behind the writer.
            immediate = conn.get_execution_options().get("sqlite_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        engine.__dict__["_sla_bot_busy_timeout_s"] = busy_timeout_ms / 1000
        engine.__dict__["_sla_bot_synchronous"] = synchronous
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


def immediate(engine: Engine) -> Engine:
    """The same engine, but its SQLite transactions take the write lock at BEGIN (cached)."""
    cached = engine.__dict__.get("_sla_bot_immediate")
    if cached is None:
        cached = engine.execution_options(sqlite_immediate=True)
        engine.__dict__["_sla_bot_immediate"] = cached
    return cached


def checkpoint(engine: Engine) -> None:
    """Fold the SQLite WAL back into the database without blocking readers or writers."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine, *, background: bool = False) -> Iterator[Connection]:
    """A write transaction; on a SQLite file, writers first queue on OS file locks.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so under load a webhook could
    wait far longer than the writer ahead of it took. `flock` waiters wake the moment the lock
    is released. Webhook intake has priority: it holds a shared "intent" lock while it waits,
    and `background` writers (the worker) yield while anyone holds it, for at most
    BACKGROUND_MAX_YIELD seconds so the worker is slowed, never starved. The kernel drops the
    locks if a holder dies. PostgreSQL needs none of this.
    """
    path = sqlite_file(engine)
    if path is None:
        with engine.begin() as conn:
            yield conn
        return
    if engine.__dict__.get("_sla_bot_synchronous", "FULL") != "FULL":
        with writer_locks(engine, background=background), immediate(engine).begin() as conn:
            yield conn
        return
    # synchronous=FULL: commit without the fsync, number the commit while still the writer,
    # and sync (shared with concurrent writers) after the locks are released (`WalSyncs`).
    syncs = WalSyncs.of(path)
    try:
        syncs.ready()
    except OSError as exc:
        raise OperationalError("the WAL sync file", {}, exc) from exc
    with writer_locks(engine, background=background), immediate(engine).connect() as conn:
        driver = conn.connection.driver_connection
        driver.execute("PRAGMA synchronous=NORMAL")
        try:
            with conn.begin():
                yield conn
            number = syncs.committed()
        finally:
            driver.execute("PRAGMA synchronous=FULL")
    try:
        syncs.sync(number)
    except OSError as exc:
        raise OperationalError("fdatasync of the WAL", {}, exc) from exc


def sqlite_file(engine: Engine) -> str | None:
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    return path if path and path != ":memory:" else None


@contextmanager
def writer_locks(engine: Engine, *, background: bool = False) -> Iterator[None]:
    """The OS file locks `write_transaction` queues on (nothing on PostgreSQL)."""
    path = sqlite_file(engine)
    if path is None:
        yield
        return
    intent = os.open(f"{path}-intent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    writer = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if background:
            _yield_to_foreground(intent)
            fcntl.flock(writer, fcntl.LOCK_EX)
        else:
            fcntl.flock(intent, fcntl.LOCK_SH)
            _lock_within(writer, engine.__dict__.get("_sla_bot_busy_timeout_s", 0.8))
        yield
    finally:
        # Unlocked explicitly, not only by closing: a process forked meanwhile holds a copy of
        # the descriptors, which would otherwise keep the locks for as long as it lives.
        for fd in (writer, intent):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


BACKGROUND_MAX_YIELD = 2.0


def _lock_within(fd: int, seconds: float) -> None:
    """Take the writer lock or give up after `seconds`, so a webhook answers 503 in time."""
    if seconds <= 0:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + seconds
    pause = 0.00005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OperationalError(
                    "write lock", {}, TimeoutError(f"database writer busy for {seconds:.1f}s")
                ) from None
            # A holder keeps the lock ~0.1 ms (one INSERT and COMMIT): poll often at first,
            # then back off to 1 ms, so a waiter does not sleep long past the release.
            time.sleep(pause)
            pause = min(pause * 2, 0.001)


def _yield_to_foreground(intent: int) -> None:
    deadline = time.monotonic() + BACKGROUND_MAX_YIELD
    while time.monotonic() < deadline:
        try:
            fcntl.flock(intent, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            time.sleep(0.002)  # a webhook is waiting or writing: let it go first
            continue
        fcntl.flock(intent, fcntl.LOCK_UN)
        return
