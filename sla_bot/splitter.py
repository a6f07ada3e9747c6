"""Worker step: split stored raw batches into deduplicated event rows.

Runs in the worker, never on the request path. A batch is claimed and split in one transaction,
so a crash leaves it pending and the next pass redoes it; the unique dedupe key makes the redo
harmless. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets several workers split in parallel.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from integrations.hubspot.payloads import PayloadError, WebhookEvent, parse
from sla_bot import metrics
from sla_bot.db.schema import webhook_batches, webhook_events
from sla_bot.intake import store_dead_letter

log = logging.getLogger(__name__)


@dataclass
class SplitResult:
    batches: int = 0
    events: int = 0
    new: int = 0
    duplicates: int = 0
    failed: int = 0


def _insert_ignore(conn: Connection, rows: list[dict[str, object]]) -> int:
    """Insert rows, skipping dedupe-key conflicts; return how many were new."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(webhook_events).on_conflict_do_nothing(
            constraint="uq_webhook_events_dedupe"
        )
    else:
        stmt = sqlite.insert(webhook_events).on_conflict_do_nothing()
    # One multi-row statement; RETURNING yields only the rows that were really inserted.
    return len(conn.execute(stmt.values(rows).returning(webhook_events.c.id)).all())


def _row(ev: WebhookEvent, batch_id: int, received_at: datetime) -> dict[str, object]:
    return {
        "portal_id": ev.portal_id,
        "object_id": ev.object_id,
        "subscription_type": ev.subscription_type,
        "subscription_id": ev.subscription_id,
        "event_id": ev.event_id,
        "occurred_at_ms": ev.occurred_at_ms,
        "property_name": ev.property_name,
        "property_value": ev.property_value,
        "change_source": ev.change_source,
        "attempt_number": ev.attempt_number,
        "payload": json.dumps(ev.raw, separators=(",", ":"), sort_keys=True),
        "batch_id": batch_id,
        "received_at": received_at,
    }


def split_pending(engine: Engine, *, now: datetime, limit: int = 50) -> SplitResult:
    """Split up to `limit` pending batches; return counts."""
    result = SplitResult()
    unparseable: list[tuple[bytes, str, str]] = []
    with engine.begin() as conn:
        query = (
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
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        for batch in conn.execute(query).all():
            result.batches += 1
            try:
                parsed = parse(
                    batch.body, received_at=batch.received_at, portal_hint=batch.portal_hint
                )
            except PayloadError as exc:
                # Intake validated it, so this means the parser changed; keep it visible.
                result.failed += 1
                log.error("stored batch %s no longer parses: %s", batch.id, exc)
                conn.execute(
                    update(webhook_batches)
                    .where(webhook_batches.c.id == batch.id)
                    .values(processed_at=now, error=str(exc)[:4000], events_total=0)
                )
                unparseable.append((batch.body, str(exc), batch.signature_version))
                continue
            rows = [_row(ev, batch.id, batch.received_at) for ev in parsed.events]
            new = _insert_ignore(conn, rows)
            dup = len(rows) - new
            conn.execute(
                update(webhook_batches)
                .where(webhook_batches.c.id == batch.id)
                .values(
                    processed_at=now, events_total=len(rows), events_new=new, events_duplicate=dup
                )
            )
            result.events += len(rows)
            result.new += new
            result.duplicates += dup
    for body, reason, version in unparseable:  # after commit: SQLite has one writer
        store_dead_letter(
            engine,
            body=body,
            reason=reason,
            received_at=now,
            source="hubspot_batch",
            signature_version=version,
        )
    if result.new:
        metrics.EVENTS_STORED.inc(result.new)
    if result.duplicates:
        metrics.EVENTS_DUPLICATE.inc(result.duplicates)
    return result
