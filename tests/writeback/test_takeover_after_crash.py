"""A worker crashed right after HubSpot created its task (nothing recorded but "sending"), and
another worker claims the row before HubSpot's search index shows the task - here its clock runs
4 s ahead of the crashed one's (with in-sync clocks a takeover comes at least one 10 s lease
after the crashed attempt was sending, which is INDEX_LAG). It must not search yet (it would find
nothing and create a second task): it waits until INDEX_LAG after the crashed attempt was
sending, then finds the task."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.writeback import INDEX_LAG, HubSpotWriter, SinglePortal
from sla_bot.clock import FrozenClock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import outbox
from sla_bot.outbox import deliver_due
from tests.writeback.test_no_inline_resend import TASK
from tests.writeback.util import PORTAL, add_row, result


def test_a_takeover_waits_for_the_index_before_searching(
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    make_hubspot_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fake_hubspot, "now", clock.now)
    fake_hubspot.add_contact("901")
    fake_hubspot.search_lag = 5.0
    add_row(engine, "t", TASK, now=clock.now())
    crashed = clock.now()
    make_hubspot_client().create_task(  # what the crashed worker's request did
        "901", subject="Call the lead", body="overdue", owner_id=None,
        due=crashed + timedelta(hours=2), idempotency_key="t",
    )  # fmt: skip
    with write_transaction(engine) as conn:  # its claim and its fence, then nothing
        conn.execute(
            update(outbox).values(
                attempts=1,
                result=json.dumps({"attempt": 1, "sending_at": crashed.timestamp()}),
                next_attempt_at=crashed + timedelta(seconds=4),
            )
        )
    clock.advance(timedelta(seconds=4))  # the lease ran out; the index is still behind
    writer = HubSpotWriter(SinglePortal(make_hubspot_client(), PORTAL))

    assert deliver_due(engine, writer, now=clock.now()) == (0, 0)
    assert len(fake_hubspot.created("tasks")) == 1
    assert not any(r.path.endswith("/search") for r in fake_hubspot.requests)

    clock.advance(timedelta(seconds=INDEX_LAG))
    assert deliver_due(engine, writer, now=clock.now()) == (1, 0)
    (task,) = fake_hubspot.created("tasks")
    assert result(engine, "t") == {
        "object_id": task["id"],
        "object_type": "tasks",
        "recovered": True,
    }
