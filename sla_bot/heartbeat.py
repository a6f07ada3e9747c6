"""Worker liveness: each worker process beats a row of `worker_heartbeats` every few seconds.

One source of truth for "is anything processing?": /readyz (a stale worker is 503), `sla-bot
health` in a worker container (its own row), and the heartbeat gauge on /metrics. Liveness is
wall-clock time, never the service's clock: the demo's clock runs up to 600 times faster, and
Prometheus compares the gauge with its own time().
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import worker_heartbeats


def wall_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Heartbeat:
    """This worker process's row."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime = field(default_factory=wall_now)

    @classmethod
    def for_this_process(cls) -> Heartbeat:
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{host[:40]}:{pid}:{uuid.uuid4().hex[:8]}", host[:255], pid)

    def beat(self, engine: Engine, *, now: datetime) -> None:
        """Say this worker is alive at `now` (an upsert of its own row; no one else writes it)."""
        from sqlalchemy.dialects import postgresql, sqlite

        with write_transaction(engine, background=True) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(worker_heartbeats).values(
                worker_id=self.worker_id,
                host=self.host,
                pid=self.pid,
                started_at=self.started_at,
                beat_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["worker_id"], set_={"beat_at": now})
            )


def latest_beat(conn: Connection, *, host: str | None = None) -> datetime | None:
    """The newest beat of any worker (of `host`'s workers if given)."""
    query = select(func.max(worker_heartbeats.c.beat_at))
    if host is not None:
        query = query.where(worker_heartbeats.c.host == host)
    value: datetime | None = conn.execute(query).scalar()
    if value is not None and value.tzinfo is None:  # func.max loses the column's type on SQLite
        value = _parse(value)
    return value


def _parse(value: object) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def local_worker_beat(conn: Connection, host: str) -> datetime | None:
    """The newest beat of a worker process that runs on this host and is still alive."""
    rows = conn.execute(
        select(worker_heartbeats.c.pid, worker_heartbeats.c.beat_at)
        .where(worker_heartbeats.c.host == host)
        .order_by(worker_heartbeats.c.beat_at.desc())
    ).all()
    for pid, beat_at in rows:
        if _pid_alive(pid):
            return _parse(beat_at)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staleness(latest: datetime | None, *, now: datetime, stale_after: float) -> str | None:
    """Why the workers look dead (None: a beat within `stale_after` seconds)."""
    if latest is None:
        return "no worker has reported a heartbeat: start `sla-bot worker` (or `sla-bot serve`)"
    age = (now - latest).total_seconds()
    if age > stale_after:
        return (
            f"the newest worker heartbeat is {age:.0f} s old (SLA_BOT_WORKER_STALE_SECONDS="
            f"{stale_after:g}): no worker is processing webhooks or sending nudges"
        )
    return None


KEEP_GONE_WORKERS = timedelta(days=1)  # rows of workers that stopped beating, for retention
