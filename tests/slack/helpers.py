"""Test data for the Slack side: lead rows, outbox payloads, rules with one team."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from sla_bot.db.schema import leads, outbox
from sla_bot.outbox import enqueue
from sla_bot.rules.model import Team
from sla_bot.rules.ruleset import RuleSet

TEAM = Team.model_validate(
    {
        "channel": "C0SALES001",
        "managers": [{"name": "Sam Manager", "email": "sam@example.com", "slack": "U0MANAGER1"}],
        "members": [
            {"name": "Alex Rep", "owner_id": "1001", "email": "alex@example.com"},
            {
                "name": "Casey Rep",
                "owner_id": "1003",
                "email": "casey@example.com",
                "slack": "U0CASEY001",
            },
            {"name": "Nobody", "owner_id": "1009", "email": "ghost@example.com"},
        ],
    }
)
RULES = RuleSet(calendars={}, teams={"inbound_sdr": TEAM}, policies={}, routing={})


def add_lead(engine: Engine, now: datetime, *, object_id: int = 901, owner: str = "1001") -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(leads)
                .values(
                    portal_id=1,
                    object_id=object_id,
                    status="open",
                    owner_id=owner,
                    updated_at=now,
                )
                .returning(leads.c.id)
            ).scalar_one()
        )


def payload(lead_id: int, now: datetime, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "lead.assigned",
        "step_key": "lead.assigned",
        "thread_key": f"lead:{lead_id}",
        "recipient": {
            "role": "owner",
            "slack": None,
            "email": "alex@example.com",
            "owner_id": "1001",
            "name": "Alex Rep",
        },
        "lead": {
            "id": lead_id,
            "portal_id": 1,
            "object_id": 901,
            "name": "Jane Doe",
            "email": "jane@acme.test",
            "company": "Acme",
            "source": "demo_request",
            "action": "requested a demo",
            "created_at": (now - timedelta(minutes=3)).isoformat(),
            "hubspot_url": "https://app.hubspot.com/contacts/1/record/0-1/901",
            "owner_id": "1001",
            "owner_name": "Alex Rep",
            "version": 1,
        },
        "deadline": (now + timedelta(minutes=2)).isoformat(),
        "timezone": "America/New_York",
        "touches": {"count": 0, "min": 8, "max": 12, "history": []},
        "text": "New lead Jane Doe",
    }
    base.update(over)
    return base


def queue(engine: Engine, lead_id: int, now: datetime, key: str, **over: Any) -> None:
    body = payload(lead_id, now, **over)
    with engine.begin() as conn:
        enqueue(
            conn,
            key=key,
            channel="slack",
            kind=body["kind"],
            payload=body,
            portal_id=1,
            now=now,
            lead_id=lead_id,
            object_id=901,
        )


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        out = [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.id))]
    for row in out:
        row["result"] = json.loads(row["result"]) if row["result"] else None
    return out
