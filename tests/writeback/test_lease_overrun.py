"""Acceptance: a HubSpot writer that outlives its lease creates nothing more and does not count
the rows as sent (old code: 5 note rows became 10 notes, and both workers counted 5 sent)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.writeback import HubSpotWriter, SinglePortal
from sla_bot.clock import FrozenClock
from sla_bot.outbox import deliver_due
from tests.writeback.util import PORTAL, add_row, result, row

NOTE = {"op": "create_note", "contact_id": "901", "body": "Escalated", "at": "2026-11-20T15:00:00Z"}


def test_a_stalled_writer_whose_lease_was_taken_over_creates_nothing(
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    make_hubspot_client: Callable[..., Any],
) -> None:
    fake_hubspot.add_contact("901")
    keys = [add_row(engine, f"note-{i}", NOTE, now=clock.now()) for i in range(5)]
    worker_a = HubSpotWriter(SinglePortal(make_hubspot_client(), PORTAL))
    worker_b = HubSpotWriter(SinglePortal(make_hubspot_client(), PORTAL))  # another replica
    taken_over: list[tuple[int, int]] = []

    class Stalling:
        """Worker A stalls past its lease on its first row (a long rate-limit wait, a frozen
        process) while worker B delivers everything; then A's real writer carries on."""

        channel = "hubspot"

        def deliver(self, item: Any) -> dict[str, Any]:
            if not taken_over:
                clock.advance(timedelta(minutes=3))
                taken_over.append(deliver_due(engine, worker_b, now=clock.now()))
            return worker_a.deliver(item)

    sent_by_a = deliver_due(engine, Stalling(), now=clock.now())

    assert taken_over == [(5, 0)]
    assert sent_by_a == (0, 0)
    notes = fake_hubspot.created("notes")
    assert len(notes) == 5
    assert {result(engine, k)["object_id"] for k in keys} == {n["id"] for n in notes}
    # A had claimed only the first row (one at a time); B took it over.
    assert [(row(engine, k).status, row(engine, k).attempts) for k in keys] == [
        ("sent", 2),
        *[("sent", 1)] * 4,
    ]
