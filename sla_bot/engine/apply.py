"""Worker job: apply stored webhook events to leads, per contact, in `occurredAt` order.

Each contact is one short write transaction: its pending events (locked with SKIP LOCKED on
PostgreSQL so two workers never apply the same contact at once), the lead change, the audit
rows and `processed_at` on the events commit together, so a crash redoes the whole contact and
nothing is applied twice or dropped. A lead whose properties are not known yet is marked
`needs_fetch`; with a HubSpot token it is routed only after the fetch (fetch.py), without one it
goes ahead with what the events carried. Changed leads get `next_due_at = now`, so the sweep
decides them on its next pass: one decision path for events, time and buttons.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from sla_bot import outbox
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import webhook_batches, webhook_events
from sla_bot.engine import audit, outcome_store
from sla_bot.engine import leads as repo
from sla_bot.engine import touches as tch
from sla_bot.engine.events import Event, apply_event, close, new_lead, route, start_clock_if_due
from sla_bot.engine.leads import Lead
from sla_bot.rules import LoadedRules

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    contacts: int = 0
    events: int = 0
    retried: int = 0
    failed: int = 0


def _quarantine(
    engine: Engine, portal_id: int, object_id: int, now: datetime, exc: Exception
) -> None:
    """Mark a contact's pending events as failed (kept, with the reason) so the queue moves on."""
    with write_transaction(engine, background=True) as conn:
        conn.execute(
            update(webhook_events)
            .where(
                webhook_events.c.portal_id == portal_id,
                webhook_events.c.object_id == object_id,
                webhook_events.c.processed_at.is_(None),
            )
            .values(processed_at=now, outcome=f"error:{type(exc).__name__}"[:32])
        )


def apply_pending(
    engine: Engine, loaded: LoadedRules, *, now: datetime, fetching: bool, limit: int = 200
) -> ApplyResult:
    """Apply the pending events of up to `limit` contacts. `fetching`: a HubSpot client will
    refresh leads marked needs_fetch (else route with what the events carry)."""
    result = ApplyResult()
    with engine.connect() as conn:
        contacts = conn.execute(
            select(webhook_events.c.portal_id, webhook_events.c.object_id)
            .where(webhook_events.c.processed_at.is_(None))
            .group_by(webhook_events.c.portal_id, webhook_events.c.object_id)
            .order_by(webhook_events.c.portal_id, webhook_events.c.object_id)  # replayable
            .limit(limit)
        ).all()
    for portal_id, object_id in contacts:
        try:
            with write_transaction(engine, background=True) as conn:
                n = _apply_contact(conn, loaded, portal_id, object_id, now=now, fetching=fetching)
        except IntegrityError:  # another worker created the lead first: redo next pass
            log.info("contact %s/%s: lost a create race; retrying", portal_id, object_id)
            n = -1
        except OperationalError:
            raise  # database locked or unreachable: the whole job retries on its next tick
        except Exception as exc:  # one contact's bad data must not stop everyone after it
            log.exception("contact %s/%s: events cannot be applied", portal_id, object_id)
            _quarantine(engine, portal_id, object_id, now, exc)
            result.failed += 1
            continue
        if n < 0:
            result.retried += 1
        else:
            result.contacts += 1
            result.events += n
    return result


def _apply_contact(
    conn: Connection,
    loaded: LoadedRules,
    portal_id: int,
    object_id: int,
    *,
    now: datetime,
    fetching: bool,
) -> int:
    query = (
        select(webhook_events)
        .where(
            webhook_events.c.portal_id == portal_id,
            webhook_events.c.object_id == object_id,
            webhook_events.c.processed_at.is_(None),
        )
        .order_by(webhook_events.c.occurred_at_ms, webhook_events.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = sorted(conn.execute(query).all(), key=event_order)
    if not rows:
        return 0
    lead = repo.find(conn, portal_id, object_id)
    if lead is None:
        lead = new_lead(portal_id, object_id)
        lead.state.first_seen_at = now
    bodies: dict[int, list[Any]] = {}
    events = [
        Event(
            portal_id,
            object_id,
            row.subscription_type,
            row.occurred_at_ms,
            row.property_name,
            row.property_value,
            _raw(conn, bodies, row.batch_id, row.batch_index),
        )
        for row in rows
    ]
    done = apply_events(lead, events, loaded, now=now, fetching=fetching)
    if not store(conn, lead, done.entries, now=now):
        return -1  # the sweep or a button changed it meanwhile: the events stay pending
    for other in done.closing:
        _close_merged(conn, portal_id, other, into=object_id, now=now)
    for row, outcome in zip(rows, done.outcomes, strict=True):
        conn.execute(
            update(webhook_events)
            .where(webhook_events.c.id == row.id)
            .values(processed_at=now, outcome=outcome[:32])
        )
    return len(rows)


def event_order(row: Any) -> tuple[int, bool, int]:
    """A contact's events in `occurredAt` order; one call moves last-contacted and the count
    at the same instant: read the exact time first."""
    return (row.occurred_at_ms, row.property_name != tch.LAST, row.id)


@dataclass
class AppliedEvents:
    entries: list[tuple[str, dict[str, Any]]]
    closing: list[int]  # contacts merged into this one
    outcomes: list[str]  # per event


def apply_events(
    lead: Lead, events: list[Event], loaded: LoadedRules, *, now: datetime, fetching: bool
) -> AppliedEvents:
    """One contact's pending events, in order, then `finish` (pure; the backtest calls it too)."""
    done = AppliedEvents([], [], [])
    for ev in events:
        applied = apply_event(lead, ev)
        done.outcomes.append(applied.outcome)
        done.entries += applied.audit
        done.closing += applied.close_objects
    finish(lead, loaded, now=now, fetching=fetching, entries=done.entries)
    return done


def finish(
    lead: Lead,
    loaded: LoadedRules,
    *,
    now: datetime,
    fetching: bool,
    entries: list[tuple[str, dict[str, Any]]],
) -> None:
    """After a lead changed: route it once its properties are known, and make it due now."""
    if not (lead.needs_fetch and fetching):
        entries += route(lead, loaded, now)
    start_clock_if_due(lead)
    if lead.policy is not None and lead.closed_reason not in ("deleted", "merged", "not_found"):
        lead.next_due_at = now


def store(
    conn: Connection, lead: Lead, entries: list[tuple[str, dict[str, Any]]], *, now: datetime
) -> bool:
    """Create or compare-and-set the lead, cancel a closed lead's unsent rows, write audit."""
    if lead.id is None:
        repo.create(conn, lead, now=now)
    elif not repo.save(conn, lead, now=now):
        return False
    assert lead.id is not None
    if lead.closed_reason in ("deleted", "merged", "not_found"):
        outbox.cancel(conn, lead.id)
        outcome_store.close_for_good(conn, lead.id, lead.closed_reason, at=lead.closed_at or now)
    audit.record(conn, lead.id, entries, at=now)
    return True


def _close_merged(conn: Connection, portal_id: int, object_id: int, *, into: int, now: datetime):
    lead = repo.find(conn, portal_id, object_id)
    if lead is not None and lead.closed_reason != "merged":
        store(conn, lead, close_merged(lead, into=into, now=now), now=now)


def close_merged(lead: Lead, *, into: int, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """A contact merged into `into` (seen on the primary's merge event) is closed for good."""
    close(lead, "merged", now)
    lead.state.merged_into = into
    return [("closed", {"reason": "merged", "into": into})]


def _raw(conn: Connection, cache: dict[int, list[Any]], batch_id: int, index: int) -> dict:
    """The full event JSON from the stored raw batch (merges and syncs need more than a row)."""
    if batch_id not in cache:
        body = conn.execute(
            select(webhook_batches.c.body).where(webhook_batches.c.id == batch_id)
        ).scalar_one()
        data = json.loads(body)
        cache[batch_id] = data if isinstance(data, list) else [data]
    items = cache[batch_id]
    return items[index] if 0 <= index < len(items) and isinstance(items[index], dict) else {}
