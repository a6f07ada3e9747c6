"""Acceptance: an ambiguous create while HubSpot's search index lags makes one object.

The fake HubSpot hides new objects from search for `search_lag` seconds, as HubSpot does. The old
client searched for its marker right after the failure (< 0.5 s), found nothing and re-sent: two
tasks. Now the create is not re-sent inline; the outbox looks again after INDEX_LAG.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.writeback import INDEX_LAG, HubSpotWriter, SinglePortal
from sla_bot.clock import FrozenClock
from sla_bot.outbox import deliver_due
from tests.writeback.util import PORTAL, add_row, result, row

TASK = {
    "op": "create_task",
    "contact_id": "901",
    "subject": "Call the lead",
    "body": "overdue",
    "due": "2026-11-20T17:00:00Z",
}


@pytest.mark.parametrize("failure", ["500 after the write", "timeout after the write"])
def test_an_ambiguous_create_with_a_lagging_index_makes_one_object(
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    make_hubspot_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    monkeypatch.setattr(fake_hubspot, "now", clock.now)  # the index lags on the test's clock
    fake_hubspot.add_contact("901")
    fake_hubspot.search_lag = 5.0
    tasks = "/crm/v3/objects/tasks"
    if failure.startswith("500"):
        fake_hubspot.fail_next(1, status=500, path_contains=tasks, method="POST", apply=True)
    else:
        fake_hubspot.delay_next(1, 1.0, path_contains=tasks)
    client = make_hubspot_client(max_retries=3, timeout=(0.5, 0.3))
    writer = HubSpotWriter(SinglePortal(client, PORTAL))
    add_row(engine, "t", TASK, now=clock.now())

    assert deliver_due(engine, writer, now=clock.now()) == (0, 0)
    assert len(fake_hubspot.created("tasks")) == 1
    assert row(engine, "t").next_attempt_at >= clock.now() + timedelta(seconds=INDEX_LAG)

    clock.advance(timedelta(seconds=INDEX_LAG))
    assert deliver_due(engine, writer, now=clock.now()) == (1, 0)
    (task,) = fake_hubspot.created("tasks")
    assert result(engine, "t")["object_id"] == task["id"]
