"""Reading and writing outcome facts (`lead_outcomes`, `lead_outcome_events`).

The sweep reads the previous facts of its claimed leads, and writes the new ones in the same
transaction as the decision, with the counters and the HubSpot write-back rows that the change
calls for (outcomes.py says which). A lead whose facts did not change costs no write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from sla_bot import metrics_store
from sla_bot.db.schema import lead_outcome_events, lead_outcomes, sync_state
from sla_bot.engine import outcomes as oc
from sla_bot.engine.effects import OutboxRow
from sla_bot.increments import Increment

WRITEBACK_JOB = "hubspot-outcome-properties"  # sync_state marker: `sla-bot hubspot setup` ran


@dataclass
class OutcomeChange:
    """The facts of one decided lead: before, after, and whether to write them to HubSpot."""

    previous: oc.Outcome | None
    new: oc.Outcome
    write_back: bool = False
    live_since: datetime | None = None  # first touches before this are history, not counted


def previous(conn: Connection, lead_ids: Iterable[int]) -> dict[int, oc.Outcome]:
    ids = sorted(set(lead_ids))
    if not ids:
        return {}
    rows = conn.execute(select(lead_outcomes).where(lead_outcomes.c.lead_id.in_(ids))).all()
    return {r.lead_id: oc.Outcome.from_row(r._mapping) for r in rows}


def writeback_portals(conn: Connection, portal_ids: Iterable[int]) -> set[int]:
    """Portals whose outcome properties exist in HubSpot (`sla-bot hubspot setup` ran)."""
    ids = sorted(set(portal_ids))
    if not ids:
        return set()
    rows = conn.execute(
        select(sync_state.c.portal_id).where(
            sync_state.c.job == WRITEBACK_JOB, sync_state.c.portal_id.in_(ids)
        )
    ).all()
    return {r.portal_id for r in rows}


def mark_writeback(conn: Connection, portal_id: int, *, now: datetime) -> None:
    """Record that the portal has the outcome properties, so the engine starts writing them."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(sync_state).values(
        portal_id=portal_id, job=WRITEBACK_JOB, watermark=now, updated_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["portal_id", "job"], set_={"updated_at": stmt.excluded.updated_at}
        )
    )


_UPSERT_FACTS: dict[str, Any] = {}


def _upsert_facts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    stmt = _UPSERT_FACTS.get(conn.dialect.name)
    if stmt is None:  # built once per dialect: `excluded` builds a proxy of every column
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(lead_outcomes)
        columns = [c.name for c in lead_outcomes.c if c.name != "lead_id"]
        stmt = _UPSERT_FACTS[conn.dialect.name] = insert.on_conflict_do_update(
            index_elements=["lead_id"], set_={c: insert.excluded[c] for c in columns}
        )
    conn.execute(stmt, rows)


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(lead_outcome_events).on_conflict_do_nothing(), rows)


def record(
    conn: Connection, changes: Iterable[tuple[int, OutcomeChange, list[Any]]], *, now: datetime
) -> dict[int, list[OutboxRow]]:
    """Write changed facts, their new events and counters; return the HubSpot rows to enqueue
    per lead. `changes`: (lead id, change, the decision's audit entries)."""
    facts, events, counts = [], [], []
    rows: dict[int, list[OutboxRow]] = {}
    for lead_id, change, audit in changes:
        new, old = change.new, change.previous
        counts += oc.increments(old, new, audit, live_since=change.live_since)
        if not oc.changed(old, new):
            continue
        facts.append({**new.row(), "lead_id": lead_id, "updated_at": now})
        events += [
            {
                "lead_id": lead_id,
                "portal_id": new.portal_id,
                "object_id": new.object_id,
                "at": e.at,
                "kind": e.kind,
                "key": e.key[:160],
                "owner_id": e.owner_id,
                "detail": e.detail[:255] if e.detail else None,
            }
            for e in new.events
        ]
        if change.write_back:
            rows[lead_id] = _writeback_rows(lead_id, new, old, now)
    if facts:
        _upsert_facts(conn, facts)
    if events:
        _insert_events(conn, events)
    metrics_store.add(conn, counts, now=now)
    return rows


def _writeback_rows(
    lead_id: int, new: oc.Outcome, old: oc.Outcome | None, now: datetime
) -> list[OutboxRow]:
    out = []
    for occurrence, props in oc.hubspot_updates(old, new):
        key = f"lead:{lead_id}:{occurrence}:hubspot:update_contact"
        payload = {"op": "update_contact", "contact_id": str(new.object_id), "properties": props}
        out.append(OutboxRow(key, "hubspot", "update_contact", payload, now, now, occurrence))
    return out


def close_for_good(conn: Connection, lead_id: int, reason: str, *, at: datetime) -> None:
    """A deleted, merged or vanished contact: its facts stay, the outcome says what happened."""
    row = conn.execute(select(lead_outcomes).where(lead_outcomes.c.lead_id == lead_id)).first()
    if row is None or row.outcome == reason:
        return
    conn.execute(
        update(lead_outcomes)
        .where(lead_outcomes.c.lead_id == lead_id)
        .values(outcome=reason, outcome_at=at, outcome_reason=None, updated_at=at)
    )
    labels = (("policy", row.policy), ("outcome", reason))
    metrics_store.add(conn, [Increment(oc.OUTCOMES, labels)], now=at)
