"""Helpers for write-back tests: put rows in the real outbox and read them back."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine, Row

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import outbox
from sla_bot.outbox import enqueue

PORTAL = 62515  # FakeHubSpot's default portal id


def add_row(
    engine: Engine, key: str, payload: dict[str, Any], *, now: datetime, portal_id: int = PORTAL
) -> str:
    """Decide one HubSpot write as the engine would; return its key."""
    with write_transaction(engine) as conn:
        assert enqueue(
            conn,
            key=key,
            channel="hubspot",
            kind="test",
            payload=payload,
            portal_id=portal_id,
            now=now,
        )
    return key


def row(engine: Engine, key: str) -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(select(outbox).where(outbox.c.idempotency_key == key)).one()


def result(engine: Engine, key: str) -> dict[str, Any]:
    raw = row(engine, key).result
    return json.loads(raw) if raw else {}
