"""Typed lead state, step occurrences on outbox rows, no `generation`.

- `leads.state` moves from an untyped bag to the typed `LeadState` (sla_bot/engine/state.py):
  `done` -> `decided`, `seen_at` -> `first_seen_at`, `prop_ms` -> `property_times` plus value
  history, `snooze_until` -> `snooze`, `hs_count`/`hs_last` -> `hubspot_touch_count`/
  `hubspot_last_contacted`; `cancelled_kinds` and `previous` go (pending messages now follow
  their step occurrence; a disqualification's previous values come from the history).
- `outbox.step` and `outbox.recipient`, so a decision can withdraw or re-target an undelivered
  message; filled in for pending rows from their idempotency key and payload.
- `leads.generation` (always 0) is dropped; occurrence keys replaced it.

The conversion is written out here rather than imported, so it stays what it was when this
migration ran, whatever the code becomes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHUNK = 500
UNTRACKED = {"num_contacted_notes", "notes_last_contacted", "lastmodifieddate", "hubspot_owner_id"}
SELECTOR_WORDS = {"all", "any", "not"}


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _instant(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _selector_properties(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_selector_properties(n) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    out: set[str] = set()
    for key, value in node.items():
        if key in SELECTOR_WORDS:
            out |= _selector_properties(value)
        else:
            out.add(key)
    return out


def convert_state(old: dict[str, Any], props: dict[str, Any], snapshot: dict[str, Any]) -> dict:
    """The legacy state bag as a LeadState (format 1) JSON object."""
    definition = snapshot.get("definition", {}) if snapshot else {}
    prop_ms: dict[str, int] = {k: int(v) for k, v in (old.get("prop_ms") or {}).items()}
    previous: dict[str, Any] = old.get("previous") or {}
    values: dict[str, list[list[Any]]] = {}
    for name, value in props.items():
        if name in UNTRACKED:
            continue
        at = prop_ms.get(name, 0)
        entries = [[max(at - 1, 0), previous[name]]] if name in previous and at else []
        values[name] = [*entries, [at, value]]
    decided: dict[str, str] = {}
    for key in old.get("done") or []:
        if key == "disqualification.premature":
            when = (definition.get("premature_disqualification") or {}).get("when")
            times = [prop_ms[p] for p in _selector_properties(when) if p in prop_ms]
            if times:
                key = f"{key}@{_stamp(datetime.fromtimestamp(max(times) / 1000, UTC))}"
        elif key == "pause.resume":
            prop = (definition.get("pause") or {}).get("resume_property")
            date = _instant(props.get(prop)) if prop else None
            if date is not None:
                key = f"{key}@{_stamp(date)}"
        decided[key] = "decided before 0004"
    new: dict[str, Any] = {"format": 1, "decided": decided, "values": values}
    new["property_times"] = prop_ms
    if old.get("seen_at"):
        new["first_seen_at"] = old["seen_at"]
    if old.get("ack"):
        ack = old["ack"]
        new["ack"] = {k: ack[k] for k in ("n", "by", "at", "until") if k in ack}
    if old.get("snooze_until"):
        new["snooze"] = {"by": "unknown", "until": old["snooze_until"]}
    for src, dst in (
        ("button_version", "button_version"),
        ("owner_names", "owner_names"),
        ("hs_count", "hubspot_touch_count"),
        ("hs_last", "hubspot_last_contacted"),
        ("merged_into", "merged_into"),
        ("timeline_status", "status"),
    ):
        if old.get(src) is not None:
            new[dst] = old[src]
    new["owners"] = [
        {"at": o["at"], "owner_id": o.get("owner_id"), "by": "legacy"}
        for o in old.get("owners") or []
    ]
    return new


TOUCH_KEYS = {"at", "signals", "connect", "kind", "owner_id", "by", "note"}


def convert_touches(old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.items() if k in TOUCH_KEYS} for t in old if "at" in t]


def _parse_key(key: str) -> tuple[str | None, str | None]:
    """lead:<id>:g<gen>:<step>:<role>:<rid> -> (step, role)."""
    parts = key.split(":")
    if len(parts) >= 6 and parts[0] == "lead" and parts[2].startswith("g"):
        return parts[3], parts[4]
    return None, None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("step", sa.String(length=128), nullable=True))
    op.add_column("outbox", sa.Column("recipient", sa.String(length=160), nullable=True))
    conn = op.get_bind()
    # SQLite >= 3.35 drops a plain column in place; a batch copy of `leads` would trip the
    # foreign keys that point at it.
    op.execute("ALTER TABLE leads DROP COLUMN generation")
    leads = sa.table(
        "leads",
        sa.column("id"),
        sa.column("state"),
        sa.column("touches"),
        sa.column("properties"),
        sa.column("policy_snapshot"),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(leads).where(leads.c.id > last).order_by(leads.c.id).limit(CHUNK)
        ).all()
        if not rows:
            break
        for r in rows:
            last = r.id
            old = json.loads(r.state or "{}")
            if old.get("format") == 1:
                continue
            props = json.loads(r.properties or "{}")
            snapshot = json.loads(r.policy_snapshot) if r.policy_snapshot else {}
            conn.execute(
                leads.update()
                .where(leads.c.id == r.id)
                .values(
                    state=json.dumps(convert_state(old, props, snapshot), sort_keys=True),
                    touches=json.dumps(convert_touches(json.loads(r.touches or "[]"))),
                )
            )
    outbox = sa.table(
        "outbox",
        sa.column("id"),
        sa.column("idempotency_key"),
        sa.column("payload"),
        sa.column("status"),
        sa.column("channel"),
        sa.column("step"),
        sa.column("recipient"),
    )
    pending = conn.execute(
        sa.select(outbox.c.id, outbox.c.idempotency_key, outbox.c.payload, outbox.c.channel).where(
            outbox.c.status == "pending"
        )
    ).all()
    for r in pending:
        step, role = _parse_key(r.idempotency_key)
        recipient = None
        if r.channel == "slack":
            who = (json.loads(r.payload or "{}").get("recipient")) or {}
            role = who.get("role") or role
            ident = who.get("owner_id") if role == "owner" else None
            ident = ident or who.get("slack") or who.get("owner_id") or who.get("email")
            recipient = f"{role}:{ident}" if role and ident else None
        conn.execute(
            outbox.update().where(outbox.c.id == r.id).values(step=step, recipient=recipient)
        )


def downgrade() -> None:
    op.add_column(
        "leads", sa.Column("generation", sa.Integer(), server_default="0", nullable=False)
    )
    op.drop_column("outbox", "recipient")
    op.drop_column("outbox", "step")
