"""Worker step: split stored raw batches into deduplicated event rows.

Runs in the worker, never on the request path. Parsing happens outside any write transaction
(SQLite has a single writer, and the webhook path must get it within milliseconds); each batch
is then claimed and written in one short transaction: a compare-and-set on `processed_at`, the
event INSERT, the counts. A crash before COMMIT leaves the batch pending and the next pass
redoes it; the unique dedupe key makes any redo harmless. Several workers on PostgreSQL may
read the same pending batch, but only one wins the claim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from integrations.hubspot.payloads import PayloadError, WebhookEvent, parse
from sla_bot import metrics
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import webhook_batches, webhook_events
from sla_bot.db.types import without_nul
from sla_bot.intake import store_dead_letter
from sla_bot.logs import db_error

log = logging.getLogger(__name__)


@dataclass
class SplitResult:
    batches: int = 0
    events: int = 0
    new: int = 0
    duplicates: int = 0
    failed: int = 0


# PostgreSQL: one array per column, unnested. One short statement whatever the row count, so
# psycopg converts and the server plans it once; a multi-row VALUES statement of 1,300
# parameters was converted anew for every batch (bench/split.py, docs/performance.md).
_PG_COLUMNS = (
    ("portal_id", "bigint"),
    ("object_id", "bigint"),
    ("subscription_type", "text"),
    ("subscription_id", "bigint"),
    ("event_id", "bigint"),
    ("occurred_at_ms", "bigint"),
    ("property_name", "text"),
    ("property_value", "text"),
    ("change_source", "text"),
    ("attempt_number", "integer"),
    ("batch_index", "integer"),
    ("batch_id", "bigint"),
    ("received_at", "timestamptz"),
)
_PG_INSERT = text(
    f"INSERT INTO {webhook_events.name} ({', '.join(name for name, _ in _PG_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{n} AS {t}[])' for n, t in _PG_COLUMNS)}) "
    "ON CONFLICT ON CONSTRAINT uq_webhook_events_dedupe DO NOTHING RETURNING id"
)


# SQLite: one executemany of one statement on the DBAPI cursor, inside the SQLAlchemy
# transaction. Through SQLAlchemy, processing each row's parameters was ~40% of a split's CPU
# (py-spy, bench/split.py), and the split holds the one writer lock webhooks wait for.
_SQLITE_INSERT = (
    f"INSERT INTO {webhook_events.name} ({', '.join(name for name, _ in _PG_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _PG_COLUMNS)}) ON CONFLICT DO NOTHING"
)


def _insert_ignore(conn: Connection, rows: list[dict[str, object]]) -> int:
    """Insert rows, skipping dedupe-key conflicts; return how many were new."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        columns = {name: [row[name] for row in rows] for name, _ in _PG_COLUMNS}
        return len(conn.execute(_PG_INSERT, columns).all())
    # Every value is an int or a str as SQLite stores it, except received_at, which goes
    # through its column type (the same for every row of a batch, so converted once).
    stamp = webhook_events.c.received_at.type.dialect_impl(conn.dialect).bind_processor(
        conn.dialect
    )
    received = {row["received_at"] for row in rows}
    stored = {at: stamp(at) if stamp else at for at in received}
    names = [name for name, _ in _PG_COLUMNS]
    values = [
        tuple(stored[row[n]] if n == "received_at" else row[n] for n in names) for row in rows
    ]
    raw = conn.connection.driver_connection
    cursor = raw.cursor()
    try:
        cursor.executemany(_SQLITE_INSERT, values)
    except conn.dialect.loaded_dbapi.Error as exc:
        # As SQLAlchemy would raise it (parameters hidden), for split_pending's handling.
        raise DBAPIError.instance(
            _SQLITE_INSERT,
            None,
            exc,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=conn.dialect,
        ) from exc
    else:
        # The rows each execution changed, summed: a conflict skipped changes nothing.
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _row(ev: WebhookEvent, batch_id: int, received_at: datetime) -> dict[str, object]:
    return {
        "portal_id": ev.portal_id,
        "object_id": ev.object_id,
        "subscription_type": without_nul(ev.subscription_type),
        "subscription_id": ev.subscription_id,
        "event_id": ev.event_id,
        "occurred_at_ms": ev.occurred_at_ms,
        "property_name": without_nul(ev.property_name),
        "property_value": without_nul(ev.property_value),
        "change_source": without_nul(ev.change_source),
        "attempt_number": ev.attempt_number,
        "batch_index": ev.batch_index,
        "batch_id": batch_id,
        "received_at": received_at,
    }


def _claim(conn: Connection, batch_id: int, now: datetime, **values: object) -> bool:
    """Compare-and-set: mark the batch processed only if nobody else has."""
    result = conn.execute(
        update(webhook_batches)
        .where(webhook_batches.c.id == batch_id, webhook_batches.c.processed_at.is_(None))
        .values(processed_at=now, **values)
    )
    return result.rowcount == 1


def split_pending(engine: Engine, *, now: datetime, limit: int = 50) -> SplitResult:
    """Split up to `limit` pending batches; return counts."""
    result = SplitResult()
    with engine.connect() as conn:
        pending = conn.execute(
            select(
                webhook_batches.c.id,
                webhook_batches.c.body,
                webhook_batches.c.received_at,
                webhook_batches.c.portal_hint,
                webhook_batches.c.signature_version,
            )
            .where(webhook_batches.c.processed_at.is_(None))
            .order_by(webhook_batches.c.id)
            .limit(limit)
        ).all()
    for batch in pending:
        try:
            parsed = parse(batch.body, received_at=batch.received_at, portal_hint=batch.portal_hint)
        except PayloadError as exc:
            # Intake validated it, so the parser must have changed; keep the body visible.
            with write_transaction(engine, background=True) as conn:
                claimed = _claim(conn, batch.id, now, error=str(exc)[:4000], events_total=0)
            if claimed:
                result.batches += 1
                result.failed += 1
                log.error("stored batch %s no longer parses: %s", batch.id, exc)
                store_dead_letter(
                    engine,
                    body=batch.body,
                    reason=str(exc),
                    received_at=now,
                    source="hubspot_batch",
                    signature_version=batch.signature_version,
                )
            continue
        rows = [_row(ev, batch.id, batch.received_at) for ev in parsed.events]
        try:
            with write_transaction(engine, background=True) as conn:
                if not _claim(conn, batch.id, now, events_total=len(rows)):
                    continue  # another worker split it first
                new = _insert_ignore(conn, rows)
                conn.execute(
                    update(webhook_batches)
                    .where(webhook_batches.c.id == batch.id)
                    .values(events_new=new, events_duplicate=len(rows) - new)
                )
        except SQLAlchemyError as exc:
            # One batch the database refuses must not block every batch queued behind it.
            if isinstance(exc, OperationalError):
                raise  # locked or unreachable: the whole pass retries later
            log.error(
                "batch %s could not be stored (%s); kept as a dead letter", batch.id, db_error(exc)
            )
            with write_transaction(engine, background=True) as conn:
                _claim(conn, batch.id, now, error=str(exc)[:4000], events_total=0)
            store_dead_letter(
                engine,
                body=batch.body,
                reason=f"cannot store: {exc}"[:4000],
                received_at=now,
                source="hubspot_batch",
                signature_version=batch.signature_version,
            )
            result.failed += 1
            continue
        result.batches += 1
        result.events += len(rows)
        result.new += new
        result.duplicates += len(rows) - new
    if result.new:
        metrics.EVENTS_STORED.inc(result.new)
    if result.duplicates:
        metrics.EVENTS_DUPLICATE.inc(result.duplicates)
    return result
