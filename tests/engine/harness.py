"""A worker in the test's hands: store webhooks, then tick apply -> fetch -> sweep at clock time."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock, to_epoch_ms
from sla_bot.db.schema import outbox
from sla_bot.engine import leads as repo
from sla_bot.engine.apply import apply_pending
from sla_bot.engine.leads import Lead
from sla_bot.engine.sweep import sweep_due
from sla_bot.fetching import Fetcher
from sla_bot.intake import store_batch
from sla_bot.outbox import OutboxItem, deliver_due
from sla_bot.rules import LoadedRules, RulesHolder
from sla_bot.splitter import split_pending

RULES = Path(__file__).resolve().parents[2] / "rules"
PORTAL = 62515


def load_rules(directory: Path = RULES) -> LoadedRules:
    holder = RulesHolder(directory)
    holder.reload_if_changed()
    return holder.current()


def ev(kind: str, object_id: int, at: datetime, n: int = 0, **extra: Any) -> dict[str, Any]:
    """One Webhooks-API event; `n` keeps otherwise equal events distinct."""
    item = {
        "eventId": 1000 + n,
        "subscriptionId": 7,
        "portalId": PORTAL,
        "occurredAt": to_epoch_ms(at),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "CRM",
    }
    item.update(extra)
    return item


def prop(object_id: int, at: datetime, name: str, value: Any, n: int = 0) -> dict[str, Any]:
    return ev(
        "contact.propertyChange",
        object_id,
        at,
        n,
        propertyName=name,
        propertyValue=None if value is None else str(value),
    )


class Recorder:
    """A deliverer for one channel that records what it was given (the edge of the system)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[OutboxItem] = []

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        self.sent.append(item)
        return {"recorded": True}


class Harness:
    def __init__(
        self,
        engine: Engine,
        clock: FrozenClock,
        loaded: LoadedRules | None = None,
        fetcher: Fetcher | None = None,
        *,
        deliver: bool = True,
    ) -> None:
        self.engine, self.clock, self.fetcher = engine, clock, fetcher
        self.loaded = loaded or load_rules()
        self.deliver = deliver
        self.slack, self.hubspot = Recorder("slack"), Recorder("hubspot")

    def webhook(self, *events: dict[str, Any], source: str = "webhooks_api") -> None:
        store_batch(
            self.engine,
            body=json.dumps(list(events)).encode(),
            source=source,
            signature_version="none",
            received_at=self.clock.now(),
        )

    def workflow(self, body: dict[str, Any]) -> None:
        """A HubSpot workflow webhook: one contact object, not an event array."""
        store_batch(
            self.engine,
            body=json.dumps(body).encode(),
            source="workflow",
            signature_version="none",
            received_at=self.clock.now(),
        )

    def tick(self) -> None:
        now = self.clock.now()
        split_pending(self.engine, now=now)
        apply_pending(self.engine, self.loaded, now=now, fetching=self.fetcher is not None)
        if self.fetcher is not None:
            self.fetcher.run(self.engine, self.loaded, now=now)
        sweep_due(self.engine, self.loaded, now=now)
        if self.deliver:
            for recorder in (self.slack, self.hubspot):
                deliver_due(self.engine, recorder, now=now, limit=1000)

    def at(self, when: datetime) -> None:
        self.clock.set(when)
        self.tick()

    def lead(self, object_id: int) -> Lead:
        with self.engine.connect() as conn:
            found = repo.find(conn, PORTAL, object_id)
        assert found is not None, f"no lead for contact {object_id}"
        return found

    def rows(self, channel: str | None = None, **where: Any) -> list[dict[str, Any]]:
        query = select(outbox).order_by(outbox.c.id)
        if channel:
            query = query.where(outbox.c.channel == channel)
        for name, value in where.items():
            query = query.where(outbox.c[name] == value)
        with self.engine.connect() as conn:
            return [
                {**r._mapping, "payload": json.loads(r.payload)} for r in conn.execute(query).all()
            ]
