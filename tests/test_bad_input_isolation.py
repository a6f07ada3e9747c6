"""One bad batch, contact or outbox row must never stop the work queued behind it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import dead_letters, leads, outbox, webhook_batches, webhook_events
from sla_bot.engine.apply import apply_pending
from sla_bot.intake import store_batch
from sla_bot.outbox import MAX_ATTEMPTS, deliver_due, enqueue
from sla_bot.rules.holder import RulesHolder
from sla_bot.splitter import split_pending
from tests.signing import batch, event, signed_headers

RULES = Path(__file__).resolve().parents[1] / "rules"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("objectId", 2**70),
        ("portalId", -1),
        ("occurredAt", 10**17),
        ("eventId", 2**64),
        ("objectId", "99999999999999999999"),
        ("subscriptionId", "²"),
    ],
)
def test_out_of_range_numbers_are_refused_at_the_door(
    client: Any, engine: Engine, clock: FrozenClock, field: str, value: Any
) -> None:
    body = batch([event(1, **{field: value})])
    response = client.post(
        "/webhooks/hubspot", data=body, headers=signed_headers(body, now=clock.now())
    )
    assert response.status_code == 400
    assert field in response.json["details"][0]
    with engine.connect() as conn:
        assert conn.execute(select(webhook_batches.c.id)).first() is None


def test_non_ascii_digit_timestamp_is_a_401_not_a_crash(client: Any, clock: FrozenClock) -> None:
    body = batch([event(1)])
    headers = signed_headers(body, now=clock.now())
    headers["X-HubSpot-Request-Timestamp"] = "\u00b2"
    response = client.post("/webhooks/hubspot", data=body, headers=headers)
    assert response.status_code == 401


def test_a_batch_the_database_refuses_is_dead_lettered_and_the_queue_moves_on(
    engine: Engine, clock: FrozenClock
) -> None:
    # Written around the intake check, as an older version might have stored it.
    bad = store_batch(
        engine,
        body=batch([event(1, object_id=2**70)]),
        source="webhooks_api",
        signature_version="v3",
        received_at=clock.now(),
    )
    store_batch(
        engine,
        body=batch([event(2)]),
        source="webhooks_api",
        signature_version="v3",
        received_at=clock.now(),
    )
    result = split_pending(engine, now=clock.now())
    assert (result.new, result.failed) == (1, 1)
    with engine.connect() as conn:
        row = conn.execute(select(webhook_batches).where(webhook_batches.c.id == bad)).one()
        assert row.processed_at is not None and row.error
        assert conn.execute(select(dead_letters.c.source)).scalar_one() == "hubspot_batch"


def test_a_contact_whose_events_cannot_be_applied_does_not_block_others(
    engine: Engine, clock: FrozenClock
) -> None:
    holder = RulesHolder(RULES)
    holder.reload_if_changed()
    broken = event(1, object_id=1, kind="contact.sync", properties=[1, 2])
    fine = event(2, object_id=2, kind="contact.creation")
    store_batch(
        engine,
        body=batch([broken, fine]),
        source="reconcile",
        signature_version="none",
        received_at=clock.now(),
    )
    split_pending(engine, now=clock.now())
    result = apply_pending(engine, holder.current(), now=clock.now(), fetching=False)
    assert result.failed == 1
    with engine.connect() as conn:
        lead_objects = conn.execute(select(leads.c.object_id)).scalars().all()
        outcome = conn.execute(
            select(webhook_events.c.outcome).where(webhook_events.c.object_id == 1)
        ).scalar_one()
    assert 2 in lead_objects and 1 not in lead_objects
    assert outcome.startswith("error:")


class _Buggy:
    """A deliverer with a bug on one row."""

    channel = "slack"

    def __init__(self) -> None:
        self.delivered: list[str] = []

    def deliver(self, item: Any) -> dict[str, Any]:
        if item.idempotency_key == "k0":
            raise KeyError("recipient")
        self.delivered.append(item.idempotency_key)
        return {"ok": True}


def test_an_unexpected_delivery_error_is_retried_and_bounded(
    engine: Engine, clock: FrozenClock
) -> None:
    with write_transaction(engine) as conn:
        for i in range(3):
            enqueue(
                conn,
                key=f"k{i}",
                channel="slack",
                kind="x",
                payload={},
                portal_id=1,
                now=clock.now(),
            )
    deliverer = _Buggy()
    assert deliver_due(engine, deliverer, now=clock.now()) == (2, 0)
    assert sorted(deliverer.delivered) == ["k1", "k2"]  # the bad row did not hold them up
    for _ in range(MAX_ATTEMPTS):
        clock.advance(timedelta(hours=1))
        deliver_due(engine, deliverer, now=clock.now())
    with engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.idempotency_key == "k0")).one()
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS
    assert "KeyError" in row.error


def test_an_outcome_is_not_recorded_by_a_worker_whose_lease_was_taken_over(
    engine: Engine, clock: FrozenClock
) -> None:
    with write_transaction(engine) as conn:
        enqueue(conn, key="k", channel="slack", kind="x", payload={}, portal_id=1, now=clock.now())

    class Slow:
        channel = "slack"

        def deliver(self, item: Any) -> dict[str, Any]:
            if item.attempts == 1:  # while worker A is slow, its lease expires; B takes over
                clock.advance(timedelta(minutes=10))
                assert deliver_due(engine, Fast(), now=clock.now()) == (1, 0)
            return {"by": "A"}

    class Fast:
        channel = "slack"

        def deliver(self, item: Any) -> dict[str, Any]:
            return {"by": "B"}

    deliver_due(engine, Slow(), now=clock.now())
    with engine.connect() as conn:
        row = conn.execute(select(outbox)).one()
    assert (row.status, json.loads(row.result)) == ("sent", {"by": "B"})
    assert row.attempts == 2
