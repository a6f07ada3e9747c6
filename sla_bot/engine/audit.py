"""The audit trail: one `lead_events` row per state change or decision ("why was I pinged?")."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from sla_bot.db.schema import lead_events


def record(
    conn: Connection,
    lead_id: int,
    entries: Iterable[tuple[str, dict[str, Any]]],
    *,
    at: datetime,
) -> int:
    """Write entries (kind, detail) for one lead in the caller's transaction."""
    rows = [
        {"lead_id": lead_id, "at": at, "kind": kind[:64], "detail": json.dumps(d, default=str)}
        for kind, d in entries
    ]
    if rows:
        conn.execute(insert(lead_events), rows)
    return len(rows)


def record_many(
    conn: Connection, entries: list[tuple[int, str, dict[str, Any]]], *, at: datetime
) -> None:
    """Entries (lead_id, kind, detail) of many leads in one executemany."""
    if entries:
        conn.execute(
            insert(lead_events),
            [
                {"lead_id": lid, "at": at, "kind": k[:64], "detail": json.dumps(d, default=str)}
                for lid, k, d in entries
            ],
        )


def history(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    """A lead's audit rows, oldest first."""
    rows = conn.execute(
        select(lead_events).where(lead_events.c.lead_id == lead_id).order_by(lead_events.c.id)
    ).all()
    return [{"at": r.at.isoformat(), "kind": r.kind, "detail": json.loads(r.detail)} for r in rows]
