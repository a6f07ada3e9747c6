"""The `leads` row as a dataclass, and the only code that reads or writes it.

Every write is a compare-and-set on `version`, so an event, a sweep and a Slack button racing on
one lead never overwrite each other: the loser re-reads and tries again (or refuses, for buttons).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, bindparam, insert, select, update

from sla_bot.db.schema import leads
from sla_bot.engine.state import LeadState, TouchRecord

# What a decision can change: the sweep writes only these (the snapshot is large and fixed).
DECIDED = (
    "status",
    "owner_id",
    "owner_assigned_at",
    "properties",
    "touches",
    "touch_count",
    "state",
    "next_due_at",
    "closed_reason",
    "closed_at",
    "updated_at",
)
# The sweep reads every column but the snapshot; `snapshot()` loads it when a pin misses.
SWEEP_COLUMNS = [c for c in leads.c if c.name != "policy_snapshot"]
_TOUCHES = TypeAdapter(list[TouchRecord])


@dataclass
class Lead:
    portal_id: int
    object_id: int
    status: str = "open"  # open | paused | closed | ignored
    id: int | None = None
    policy: str | None = None
    policy_hash: str | None = None
    policy_snapshot: dict[str, Any] | None = None
    rules_version: str | None = None
    owner_id: str | None = None
    owner_assigned_at: datetime | None = None
    created_at: datetime | None = None
    clock_started_at: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    touches: list[TouchRecord] = field(default_factory=list)
    state: LeadState = field(default_factory=LeadState)
    next_due_at: datetime | None = None
    last_event_ms: int = 0
    needs_fetch: int = 0
    closed_reason: str | None = None
    closed_at: datetime | None = None
    version: int = 0
    updated_at: datetime | None = None

    @property
    def is_closed(self) -> bool:
        return self.status == "closed"

    def copy(self) -> Lead:
        """A deep-enough copy: the mutable parts are rebuilt so edits never leak back
        (the policy snapshot is never edited, so it is shared)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["properties"] = json.loads(json.dumps(self.properties))
        values["touches"] = [t.model_copy() for t in self.touches]
        values["state"] = self.state.model_copy(deep=True)
        return Lead(**values)


def from_row(row: Row[Any]) -> Lead:
    values = dict(row._mapping)
    values.pop("touch_count", None)
    snapshot = values.get("policy_snapshot")
    values["policy_snapshot"] = json.loads(snapshot) if snapshot else None
    values["properties"] = json.loads(values.get("properties") or "{}")
    values["touches"] = _TOUCHES.validate_json(values.get("touches") or "[]")
    values["state"] = LeadState.model_validate_json(values.get("state") or "{}")
    return Lead(**values)


def _values(lead: Lead) -> dict[str, Any]:
    values = {f.name: getattr(lead, f.name) for f in fields(lead) if f.name != "id"}
    if lead.policy_snapshot is not None:
        values["policy_snapshot"] = json.dumps(lead.policy_snapshot, sort_keys=True)
    values["properties"] = json.dumps(lead.properties, sort_keys=True, default=str)
    values["touches"] = _TOUCHES.dump_json(lead.touches, exclude_defaults=True).decode()
    values["state"] = lead.state.model_dump_json(exclude_defaults=True)
    values["touch_count"] = len(lead.touches)
    return values


def get(conn: Connection, lead_id: int, *, for_update: bool = False) -> Lead | None:
    query = select(leads).where(leads.c.id == lead_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return from_row(row) if row else None


def find(conn: Connection, portal_id: int, object_id: int) -> Lead | None:
    row = conn.execute(
        select(leads).where(leads.c.portal_id == portal_id, leads.c.object_id == object_id)
    ).first()
    return from_row(row) if row else None


def find_by_object(conn: Connection, object_id: int, portal_id: int | None = None) -> list[Lead]:
    query = select(leads).where(leads.c.object_id == object_id)
    if portal_id is not None:
        query = query.where(leads.c.portal_id == portal_id)
    return [from_row(r) for r in conn.execute(query.order_by(leads.c.id)).all()]


def create(conn: Connection, lead: Lead, *, now: datetime) -> Lead:
    """Insert a new lead; returns it with its id."""
    lead.updated_at = now
    new_id = conn.execute(insert(leads).values(**_values(lead)).returning(leads.c.id)).scalar_one()
    lead.id = int(new_id)
    return lead


def save(conn: Connection, lead: Lead, *, now: datetime) -> bool:
    """Compare-and-set: write `lead` only if nobody changed the row since it was read.

    Bumps `version` (on success the object carries the new version). False: lost the race.
    """
    assert lead.id is not None
    expected = lead.version
    lead.updated_at = now
    values = _values(lead)
    values["version"] = expected + 1
    done = conn.execute(
        update(leads).where(leads.c.id == lead.id, leads.c.version == expected).values(**values)
    ).rowcount
    if done == 1:
        lead.version = expected + 1
        return True
    return False


def save_many(conn: Connection, batch: list[Lead], *, now: datetime) -> None:
    """Compare-and-set many leads the caller holds locked (the sweep's claimed batch), in one
    executemany; raises if any lost the race, which would mean the lock did not hold."""
    if not batch:
        return
    params = []
    names = [*DECIDED, "version"]
    for lead in batch:
        lead.updated_at = now
        values = _values(lead)
        values["version"] = lead.version + 1
        params.append(
            {**{f"v_{k}": values[k] for k in names}, "b_id": lead.id, "b_version": lead.version}
        )
    stmt = (
        update(leads)
        .where(leads.c.id == bindparam("b_id"), leads.c.version == bindparam("b_version"))
        .values({name: bindparam(f"v_{name}") for name in names})
    )
    done = conn.execute(stmt, params).rowcount
    if done != len(batch):
        raise RuntimeError(f"lead batch changed under its lock ({done}/{len(batch)} saved)")
    for lead in batch:
        lead.version += 1


def snapshot(conn: Connection, lead_id: int) -> dict[str, Any]:
    raw = conn.execute(select(leads.c.policy_snapshot).where(leads.c.id == lead_id)).scalar()
    return json.loads(raw) if raw else {}
