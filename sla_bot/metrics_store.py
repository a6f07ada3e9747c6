"""Counters the worker keeps in the database (`metric_series`), so /metrics is right however the
processes are deployed.

Where each metric is written and who exposes it:
- web processes (gunicorn workers) count what they do in prometheus_client's multiprocess files
  (`sla_bot.metrics`), aggregated by whichever web process answers `/metrics`;
- the worker writes its counters here: outcome counters in the very transaction that records a
  decision (exact: a rolled-back decision counts nothing, a replayed one counts once), delivery
  and API-error counters from an in-memory buffer flushed every few seconds;
- gauges (open and overdue leads, outbox backlog, the worker's heartbeat from
  `worker_heartbeats`) are read from the database when `/metrics` is scraped
  (`sla_bot.metrics_db`).

So `serve`, and `web` + `worker` run separately (even on different machines), expose the same
numbers on any web process's `/metrics`. Each process only updates its own rows (`process`), so
worker replicas never wait on each other's counter rows.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import metric_series
from sla_bot.increments import Increment, Labels

log = logging.getLogger(__name__)
PROCESS = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def labels_key(labels: Labels) -> str:
    return json.dumps(sorted(labels), separators=(",", ":"))


def labels_of(key: str) -> dict[str, str]:
    return {k: v for k, v in json.loads(key)}


def _upsert(conn: Connection, values: list[dict[str, object]], *, add: bool) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(metric_series)
    new = stmt.excluded.value
    stmt = stmt.on_conflict_do_update(
        index_elements=["name", "labels", "process"],
        set_={
            "value": metric_series.c.value + new if add else new,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(stmt, values)


def add(
    conn: Connection, increments: Iterable[Increment], *, now: datetime, process: str = PROCESS
) -> None:
    """Add to this process's counters in the caller's transaction."""
    totals: dict[tuple[str, str], float] = {}
    for inc in increments:
        key = (inc.name, labels_key(inc.labels))
        totals[key] = totals.get(key, 0.0) + inc.value
    if totals:
        rows = [
            {"name": n, "labels": lk, "process": process, "value": v, "updated_at": now}
            for (n, lk), v in sorted(totals.items())
        ]
        _upsert(conn, rows, add=True)


def totals(conn: Connection) -> dict[tuple[str, str], float]:
    """(name, labels) -> value summed over processes."""
    out: dict[tuple[str, str], float] = {}
    for name, labels, value in conn.execute(
        select(metric_series.c.name, metric_series.c.labels, metric_series.c.value)
    ).all():
        key = (name, labels)
        out[key] = out.get(key, 0.0) + value
    return out


class Buffer:
    """Counts made outside a database transaction (deliveries, API errors), kept in memory and
    flushed by a worker job; a crash loses at most one flush interval of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Increment] = []

    def add(self, name: str, labels: Labels, value: float = 1.0) -> None:
        with self._lock:
            self._pending.append(Increment(name, labels, value))

    def flush(self, engine: Engine, *, now: datetime) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        try:
            with write_transaction(engine, background=True) as conn:
                add(conn, pending, now=now)
        except Exception:
            with self._lock:  # keep them for the next flush
                self._pending = pending + self._pending
            raise
        return len(pending)


# The worker's buffer; counting code in any process calls `count`, which writes to the buffer
# in the worker (flushed to the database) and to prometheus_client elsewhere (see metrics.py).
BUFFER = Buffer()
_buffering = False


def buffer_in_this_process() -> None:
    """Called by `sla-bot worker`: this process's counts go to the database."""
    global _buffering
    _buffering = True


def count(name: str, labels: Labels, value: float = 1.0) -> None:
    if _buffering:
        BUFFER.add(name, labels, value)
        return
    from sla_bot import metrics

    metrics.local_counter(name, labels).inc(value)


DELIVERIES = "sla_bot_deliveries_total"
API_ERRORS = "sla_bot_api_errors_total"


def api_error(api: str, *, transient: bool) -> None:
    """A failed HubSpot or Slack call (each attempt; the adapters call this)."""
    count(API_ERRORS, (("api", api), ("kind", "transient" if transient else "permanent")))


class Counted:
    """A deliverer whose attempts are counted by outcome as the outbox settled them: sent,
    retry (a transient failure, to be tried again), failed (a permanent one) or lost (another
    worker took the row over: not sent here, whatever the call returned)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.channel = inner.channel

    def deliver(self, item: Any) -> Any:
        return self.inner.deliver(item)

    def settled(self, item: Any, outcome: str) -> None:
        """Called by the outbox once the outcome is recorded (or the lease found lost)."""
        count(DELIVERIES, (("channel", self.channel), ("outcome", outcome)))
