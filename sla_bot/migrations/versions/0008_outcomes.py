"""Outcome facts per lead, their events, and the worker's counters for /metrics.

- `lead_outcomes`: one row per lead whose clock started (speed to lead, met/breached, touches,
  escalations, outcome, funnel stage times), written by the sweep as it decides;
- `lead_outcome_events`: what happened to a lead and when (touches, breach, ladder steps sent,
  reassignments, lifecycle stages, premature disqualifications, outcome);
- `metric_series`: counters kept in the database so any web process exposes the worker's.

Existing leads are backfilled from what the engine recorded: the lead row (touches with their
owner, state: decided steps, owners, property history) and the audit trail (`lead_events`:
fired steps with their due times, closes). Business time needs the rules' calendars, which a
migration must not import, so backfilled rows have no business seconds (`backfilled` = 1) until
the engine decides the lead again; docs/reports.md says how reports treat them.

The conversion is written out here rather than imported, so it stays what it was when this
migration ran, whatever the code becomes.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01
"""

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import BigId, UTCDateTime

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

CHUNK = 500
SIGNALS = ["num_contacted_notes", "notes_last_contacted", "slack_log"]
CAMPAIGN_PROPERTIES = ("utm_campaign", "recent_conversion_event_name")
STAGES = {
    "qualified_at": {"salesqualifiedlead", "opportunity", "customer"},
    "opportunity_at": {"opportunity", "customer"},
    "customer_at": {"customer"},
}
CLOSED = {"stopped": "converted", "recycled": "recycled", "disqualified": "disqualified"}
FINAL = {"deleted", "merged", "not_found"}


def upgrade() -> None:
    op.create_table(
        "lead_outcomes",
        sa.Column("lead_id", BigId, autoincrement=False, nullable=False),
        sa.Column("portal_id", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("policy", sa.String(length=128), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("owner_name", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("latest_source", sa.String(length=64), nullable=True),
        sa.Column("campaign", sa.String(length=255), nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=True),
        sa.Column("first_touch_at", UTCDateTime, nullable=True),
        sa.Column("first_touch_owner_id", sa.String(length=64), nullable=True),
        sa.Column("business_seconds", sa.Integer(), nullable=True),
        sa.Column("wall_seconds", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("late_by_seconds", sa.Integer(), nullable=True),
        sa.Column("touches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("connected_at", UTCDateTime, nullable=True),
        sa.Column("last_touch_at", UTCDateTime, nullable=True),
        sa.Column("escalations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reassignments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("gap_misses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("min_touches", sa.Integer(), server_default="1", nullable=False),
        sa.Column("outcome", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("outcome_reason", sa.String(length=255), nullable=True),
        sa.Column("outcome_at", UTCDateTime, nullable=True),
        sa.Column("touches_before_outcome", sa.Integer(), nullable=True),
        sa.Column("premature_dq", sa.Integer(), server_default="0", nullable=False),
        sa.Column("qualified_at", UTCDateTime, nullable=True),
        sa.Column("opportunity_at", UTCDateTime, nullable=True),
        sa.Column("customer_at", UTCDateTime, nullable=True),
        sa.Column("connected_after_s", sa.Integer(), nullable=True),
        sa.Column("qualified_after_s", sa.Integer(), nullable=True),
        sa.Column("opportunity_after_s", sa.Integer(), nullable=True),
        sa.Column("customer_after_s", sa.Integer(), nullable=True),
        sa.Column("backfilled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_outcomes_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_lead_outcomes")),
        sa.UniqueConstraint("portal_id", "object_id", name="uq_lead_outcomes_portal_id_object_id"),
    )
    op.create_index("ix_lead_outcomes_started_at", "lead_outcomes", ["started_at"])
    op.create_index(
        "ix_lead_outcomes_open",
        "lead_outcomes",
        ["policy"],
        postgresql_where=sa.text("outcome = 'open'"),
        sqlite_where=sa.text("outcome = 'open'"),
    )
    op.create_table(
        "lead_outcome_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("lead_id", BigId, nullable=False),
        sa.Column("portal_id", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_outcome_events_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_outcome_events")),
        sa.UniqueConstraint("lead_id", "key", name="uq_lead_outcome_events_lead_id_key"),
    )
    op.create_table(
        "metric_series",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("labels", sa.String(length=255), nullable=False),
        sa.Column("process", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", "labels", "process", name=op.f("pk_metric_series")),
    )
    backfill(op.get_bind(), datetime.now(UTC))


def downgrade() -> None:
    op.drop_table("metric_series")
    op.drop_table("lead_outcome_events")
    op.drop_index("ix_lead_outcomes_open", table_name="lead_outcomes")
    op.drop_index("ix_lead_outcomes_started_at", table_name="lead_outcomes")
    op.drop_table("lead_outcomes")


# --- backfill ------------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: Any, limit: int) -> str | None:
    text = "" if value is None else str(value).strip()
    return text[:limit] or None


def _owner_at(owners: list[dict[str, Any]], at: datetime, current: str | None) -> str | None:
    owner = None
    for o in owners:
        since = _time(o.get("at"))
        if since is not None and since > at:
            return owner if owner is not None else o.get("owner_id")
        owner = o.get("owner_id")
    return current


def _rung(key: str) -> int:
    try:
        return int(key.split(".", 1)[1].split("#", 1)[0])
    except (IndexError, ValueError):
        return 0


def facts_from_trail(
    lead: dict[str, Any], trail: list[tuple[datetime, str, dict[str, Any]]]
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """One backfilled `lead_outcomes` row and its events, from a lead row and its audit trail
    (time, kind, detail), oldest first. None: no policy or no clock."""
    start = _time(lead.get("clock_started_at"))
    policy = lead.get("policy")
    if start is None or not policy:
        return None
    snapshot = lead.get("policy_snapshot") or {}
    definition = snapshot.get("definition") or {}
    signals = set((definition.get("touches") or {}).get("signals") or SIGNALS)
    dq = definition.get("premature_disqualification") or {}
    cadence = definition.get("cadence") or {}
    needed = dq.get("min_touches") or cadence.get("min_touches") or 1
    state = lead.get("state") or {}
    owners = state.get("owners") or []
    props = lead.get("properties") or {}
    touches = sorted(
        (t for t in lead.get("touches") or [] if signals.intersection(t.get("signals") or [])),
        key=lambda t: _time(t["at"]) or start,
    )
    touches = [t for t in touches if (_time(t["at"]) or start) >= start]
    events: list[dict[str, Any]] = []
    fired = [(at, d) for at, kind, d in trail if kind == "step.fired"]
    due = None
    for _, d in fired:
        if d.get("kind") == "first_touch.breach":
            due = _time(d.get("due_at"))
    row: dict[str, Any] = {
        "portal_id": lead["portal_id"],
        "object_id": lead["object_id"],
        "policy": policy,
        "team": definition.get("team"),
        "started_at": start,
        "due_at": due,
        "touches": len(touches),
        "min_touches": needed,
        "backfilled": 1,
        "source": _text(props.get("hs_analytics_source"), 64),
        "latest_source": _text(props.get("hs_latest_source"), 64),
    }
    full = " ".join(str(props.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
    row["name"] = _text(full or props.get("email"), 255)
    row["campaign"] = next(
        (t for t in (_text(props.get(p), 255) for p in CAMPAIGN_PROPERTIES) if t), None
    )
    connect_at = None
    for t in touches:
        at = _time(t["at"])
        assert at is not None
        kind = "connect" if t.get("connect") else "touch"
        if t.get("connect") and connect_at is None:
            connect_at = at
        events.append(_event(lead, at, kind, f"touch@{at.isoformat()}", t.get("owner_id")))
    accountable = lead.get("owner_id")
    if touches:
        first = _time(touches[0]["at"])
        assert first is not None
        toucher = touches[0].get("owner_id") or _owner_at(owners, first, lead.get("owner_id"))
        row |= {
            "first_touch_at": first,
            "first_touch_owner_id": toucher,
            "wall_seconds": int((first - start).total_seconds()),
            "last_touch_at": _time(touches[-1]["at"]),
        }
        if due is None or first <= due:
            row["result"], accountable = "met", toucher
    if row.get("result") is None and due is not None:
        row["result"] = "breached"
        accountable = _owner_at(owners, due, lead.get("owner_id"))
        events.append(_event(lead, due, "breach", "first_touch.breach", accountable))
    row["owner_id"] = accountable
    row["owner_name"] = _text((state.get("owner_names") or {}).get(accountable or ""), 255)
    row["connected_at"] = connect_at
    ladder = [d for _, d in fired if d.get("kind") == "ladder"]
    for d in ladder:
        at = _time(d.get("due_at"))
        if at is not None:
            events.append(_event(lead, at, "escalation", str(d.get("step")), None))
    row["escalations"] = len(ladder)
    row["escalation_level"] = max((_rung(str(d.get("step"))) for d in ladder), default=0)
    row["gap_misses"] = sum(1 for _, d in fired if d.get("kind") == "cadence.due")
    premature = [d for _, d in fired if d.get("kind") == "disqualification.premature"]
    for d in premature:
        at = _time(d.get("due_at"))
        if at is not None:
            detail = f"{(d.get('detail') or {}).get('touches', 0)}/{needed}"
            events.append(_event(lead, at, "premature_dq", str(d.get("step")), None, detail))
    row["premature_dq"] = len(premature)
    n = 0
    for i, o in enumerate(owners):
        if i > 0 and owners[i - 1].get("owner_id") is not None:
            n += 1
            at = _time(o.get("at"))
            if at is not None:
                key = f"owner@{at.isoformat()}"
                events.append(_event(lead, at, "reassigned", key, o.get("owner_id"), o.get("by")))
    row["reassignments"] = n
    for ms, stage in (state.get("values") or {}).get("lifecyclestage") or []:
        at = datetime.fromtimestamp(int(ms) / 1000, UTC)
        events.append(_event(lead, at, "stage", f"stage@{ms}", None, _text(stage, 255)))
        for column, values in STAGES.items():
            if str(stage or "").lower() in values and row.get(column) is None:
                row[column] = at
    times = [start, row.get("first_touch_at"), connect_at, *(row.get(c) for c in STAGES)]
    for name, wait in zip(WAITS, stage_waits(times), strict=True):
        row[name] = wait
    reason = lead.get("closed_reason")
    outcome = CLOSED.get(reason or "") or (reason if reason in FINAL else None)
    closed_at = _time(lead.get("closed_at"))
    if lead.get("status") == "closed" and outcome and closed_at is not None:
        row |= {"outcome": outcome, "outcome_at": closed_at}
        row["touches_before_outcome"] = sum(
            1 for t in touches if (_time(t["at"]) or closed_at) <= closed_at
        )
        if outcome == "disqualified" and row["touches_before_outcome"] < needed:
            row["outcome_reason"] = "premature"
        key = f"outcome:{outcome}@{_stamp(closed_at)}"
        events.append(_event(lead, closed_at, "outcome", key, None, row.get("outcome_reason")))
    return row, events


WAITS = ("connected_after_s", "qualified_after_s", "opportunity_after_s", "customer_after_s")


def stage_waits(times: list[datetime | None]) -> list[int | None]:
    """Seconds from the latest earlier stage reached to each of connected, qualified,
    opportunity, customer (times: lead, touched, connected, qualified, opportunity, customer)."""
    out: list[int | None] = []
    for i in range(2, len(times)):
        at, before = times[i], None
        if at is not None:
            before = max((t for t in times[:i] if t is not None and t <= at), default=None)
        out.append(None if at is None or before is None else int((at - before).total_seconds()))
    return out


def _event(
    lead: dict[str, Any],
    at: datetime,
    kind: str,
    key: str,
    owner_id: str | None,
    detail: str | None = None,
) -> dict[str, Any]:
    return {
        "lead_id": lead["id"],
        "portal_id": lead["portal_id"],
        "object_id": lead["object_id"],
        "at": at,
        "kind": kind,
        "key": key[:160],
        "owner_id": owner_id,
        "detail": _text(detail, 255),
    }


def backfill(conn: sa.Connection, now: datetime) -> int:
    leads = sa.table(
        "leads",
        *(
            sa.column(c)
            for c in (
                "id",
                "portal_id",
                "object_id",
                "status",
                "policy",
                "policy_snapshot",
                "owner_id",
                "clock_started_at",
                "properties",
                "touches",
                "state",
                "closed_reason",
                "closed_at",
            )
        ),
    )
    audit = sa.table(
        "lead_events", sa.column("id"), sa.column("lead_id"), sa.column("at"), sa.column("kind")
    )
    audit_detail = sa.column("detail")
    outcomes = sa.table("lead_outcomes", *(_typed(c) for c in OUTCOME_COLUMNS))
    events_table = sa.table("lead_outcome_events", *(_typed(c) for c in EVENT_COLUMNS))
    done, last = 0, 0
    while True:
        chunk = conn.execute(
            sa.select(leads)
            .where(leads.c.id > last, leads.c.clock_started_at.is_not(None))
            .order_by(leads.c.id)
            .limit(CHUNK)
        ).all()
        if not chunk:
            return done
        last = chunk[-1].id
        ids = [r.id for r in chunk]
        trails: dict[int, list[tuple[datetime, str, dict[str, Any]]]] = {}
        for r in conn.execute(
            sa.select(audit.c.lead_id, audit.c.at, audit.c.kind, audit_detail)
            .select_from(audit)
            .where(
                audit.c.lead_id.in_(ids),
                audit.c.kind.in_(["step.fired", "closed"]),
            )
            .order_by(audit.c.id)
        ).all():
            trails.setdefault(r.lead_id, []).append((r.at, r.kind, json.loads(r.detail or "{}")))
        rows, events = [], []
        for r in chunk:
            lead = {
                **r._mapping,
                "policy_snapshot": json.loads(r.policy_snapshot) if r.policy_snapshot else {},
                "properties": json.loads(r.properties or "{}"),
                "touches": json.loads(r.touches or "[]"),
                "state": json.loads(r.state or "{}"),
            }
            got = facts_from_trail(lead, trails.get(r.id, []))
            if got is None:
                continue
            row, evs = got
            rows.append({**{c: None for c in OUTCOME_COLUMNS}, **DEFAULTS, **row})
            rows[-1] |= {"lead_id": r.id, "updated_at": now}
            events += evs
        if rows:
            conn.execute(outcomes.insert(), rows)
            done += len(rows)
        seen: set[tuple[int, str]] = set()
        unique = []
        for e in events:
            if (e["lead_id"], e["key"]) not in seen:
                seen.add((e["lead_id"], e["key"]))
                unique.append(e)
        if unique:
            conn.execute(events_table.insert(), unique)


def _typed(name: str) -> sa.ColumnClause[Any]:
    """Times go through UTCDateTime, so SQLite stores them the way the app reads them."""
    return sa.column(name, UTCDateTime) if name.endswith("_at") or name == "at" else sa.column(name)


OUTCOME_COLUMNS = (
    "lead_id",
    "portal_id",
    "object_id",
    "name",
    "policy",
    "team",
    "owner_id",
    "owner_name",
    "source",
    "latest_source",
    "campaign",
    "started_at",
    "due_at",
    "first_touch_at",
    "first_touch_owner_id",
    "business_seconds",
    "wall_seconds",
    "result",
    "late_by_seconds",
    "touches",
    "connected_at",
    "last_touch_at",
    "escalations",
    "escalation_level",
    "reassignments",
    "gap_misses",
    "min_touches",
    "outcome",
    "outcome_reason",
    "outcome_at",
    "touches_before_outcome",
    "premature_dq",
    "qualified_at",
    "opportunity_at",
    "customer_at",
    "connected_after_s",
    "qualified_after_s",
    "opportunity_after_s",
    "customer_after_s",
    "backfilled",
    "updated_at",
)
DEFAULTS = {
    "touches": 0,
    "escalations": 0,
    "escalation_level": 0,
    "reassignments": 0,
    "gap_misses": 0,
    "min_touches": 1,
    "outcome": "open",
    "premature_dq": 0,
    "backfilled": 1,
}
EVENT_COLUMNS = ("lead_id", "portal_id", "object_id", "at", "kind", "key", "owner_id", "detail")
