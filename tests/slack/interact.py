"""Signed Slack interaction requests, and a lead the engine's actions can work on."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.engine import leads as repo
from sla_bot.engine.leads import Lead

SIGNING_SECRET = "slack-signing-secret-for-tests"


def signed(
    payload: dict[str, Any], at: datetime, secret: str = SIGNING_SECRET
) -> tuple[bytes, dict]:
    body = ("payload=" + quote(json.dumps(payload))).encode()
    ts = str(int(at.timestamp()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    return body, headers


def button(action_id: str, user: str, lead_id: int, version: int, channel: str, ts: str) -> dict:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "trigger_id": f"trigger-{action_id}-{user}",
        "container": {"type": "message", "channel_id": channel, "message_ts": ts},
        "channel": {"id": channel},
        "actions": [{"action_id": action_id, "value": f"{lead_id}:{version}", "type": "button"}],
    }


def submission(view: dict[str, Any], user: str, values: dict[str, Any]) -> dict:
    state = {block: {block: value} for block, value in values.items()}
    return {
        "type": "view_submission",
        "user": {"id": user},
        "view": {**view, "state": {"values": state}},
    }


def selected(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def make_lead(engine: Engine, now: datetime, owner: str = "1001") -> int:
    lead = Lead(
        portal_id=1,
        object_id=901,
        owner_id=owner,
        owner_assigned_at=now,
        created_at=now,
        clock_started_at=now,
        policy="inbound_demo",
        policy_snapshot={
            "format": 1,
            "policy": "inbound_demo",
            "definition": {"team": "inbound_sdr"},
            "calendars": {},
        },
        properties={
            "firstname": "Jane",
            "lastname": "Doe",
            "company": "Acme",
            "email": "jane@acme.test",
            "lead_source": "demo_request",
        },
    )
    with write_transaction(engine) as conn:
        return int(repo.create(conn, lead, now=now).id or 0)


def get_lead(engine: Engine, lead_id: int) -> Lead:
    with engine.connect() as conn:
        found = repo.get(conn, lead_id)
    assert found is not None
    return found
