"""HubSpotWriter through the real outbox: backoff, ambiguous creates, crashes, a failure storm."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from integrations.hubspot import engagements as eng
from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.writeback import INDEX_LAG, HubSpotWriter, SinglePortal
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import outbox
from sla_bot.outbox import deliver_due
from tests.writeback.util import PORTAL, add_row, result, row

TASK = {
    "op": "create_task",
    "contact_id": "901",
    "subject": "Call the lead",
    "body": "overdue",
    "owner_id": "77",
    "due": "2026-11-20T17:00:00Z",
}
MakeWriter = Callable[..., HubSpotWriter]


@pytest.fixture
def make_writer(fake_hubspot: FakeHubSpot, make_hubspot_client: Callable[..., Any]) -> MakeWriter:
    """A writer on a fresh client: a new client is a restarted worker (no in-process memory)."""
    fake_hubspot.add_contact("901")
    for i in range(1, 11):
        fake_hubspot.add_contact(str(i))

    def make(max_retries: int = 0) -> HubSpotWriter:
        return HubSpotWriter(SinglePortal(make_hubspot_client(max_retries=max_retries), PORTAL))

    return make


def searches(fake: FakeHubSpot) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/search"))


def test_429_is_retried_after_the_backoff(engine, clock, fake_hubspot, make_writer) -> None:
    writer = make_writer()
    fake_hubspot.fail_next(1, status=429, retry_after=7, path_contains="/contacts/901")
    payload = {"op": "update_contact", "contact_id": "901", "properties": {"company": "1"}}
    add_row(engine, "u", payload, now=clock.now())

    assert deliver_due(engine, writer, now=clock.now()) == (0, 0)
    first = row(engine, "u")
    assert (first.status, first.attempts) == ("pending", 1)
    assert "HTTP 429" in first.error
    assert first.next_attempt_at == clock.now() + timedelta(seconds=7)  # Retry-After honoured

    clock.advance(timedelta(seconds=6))
    assert deliver_due(engine, writer, now=clock.now()) == (0, 0)  # not due yet: no request
    assert len(fake_hubspot.requests) == 1

    clock.advance(timedelta(seconds=1))
    assert deliver_due(engine, writer, now=clock.now()) == (1, 0)
    done = row(engine, "u")
    assert (done.status, done.attempts, done.error) == ("sent", 2, None)
    assert fake_hubspot.contacts["901"]["company"] == "1"


@pytest.mark.parametrize("restarted", [False, True], ids=["same-worker", "restarted-worker"])
def test_ambiguous_500_on_create_task_makes_one_task(
    engine, clock, fake_hubspot, make_writer, restarted
) -> None:
    writer = make_writer()
    fake_hubspot.fail_next(1, status=500, path_contains="/tasks", method="POST", apply=True)
    add_row(engine, "t", TASK, now=clock.now())

    assert deliver_due(engine, writer, now=clock.now()) == (0, 0)
    assert len(fake_hubspot.created("tasks")) == 1  # HubSpot did create it
    pending = row(engine, "t")
    assert result(engine, "t") == {"attempt": 1, "maybe_created": True}
    # The retry waits for the search index to catch up before looking for the marker.
    assert pending.next_attempt_at >= clock.now() + timedelta(seconds=INDEX_LAG)

    clock.advance(timedelta(minutes=1))
    retry_writer = make_writer() if restarted else writer
    assert deliver_due(engine, retry_writer, now=clock.now()) == (1, 0)
    tasks = fake_hubspot.created("tasks")
    assert len(tasks) == 1
    assert result(engine, "t")["object_id"] == tasks[0]["id"]


def test_a_worker_that_died_mid_send_does_not_duplicate(
    engine, clock, fake_hubspot, make_writer, make_hubspot_client
) -> None:
    add_row(engine, "t", TASK, now=clock.now())
    # The dead worker claimed the row (attempts=1, lease) and created the task, then died.
    task_id = make_hubspot_client().create_task(
        "901",
        subject="Call the lead",
        body="overdue",
        owner_id="77",
        due=clock.now(),
        idempotency_key="t",
    )
    with write_transaction(engine) as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.idempotency_key == "t")
            .values(attempts=1, next_attempt_at=clock.now() + timedelta(seconds=60))
        )
    clock.advance(timedelta(seconds=61))  # the lease expires
    assert deliver_due(engine, make_writer(), now=clock.now()) == (1, 0)
    assert [t["id"] for t in fake_hubspot.created("tasks")] == [task_id]
    assert result(engine, "t") == {"object_id": task_id, "object_type": "tasks", "recovered": True}


def test_a_clean_failure_is_resent_without_a_search(
    engine, clock, fake_hubspot, make_writer
) -> None:
    writer = make_writer()
    fake_hubspot.fail_next(1, status=429, path_contains="/tasks", method="POST")
    add_row(engine, "t", TASK, now=clock.now())
    assert deliver_due(engine, writer, now=clock.now()) == (0, 0)
    assert result(engine, "t") == {"attempt": 1, "maybe_created": False}
    clock.advance(timedelta(minutes=1))
    assert deliver_due(engine, make_writer(), now=clock.now()) == (1, 0)
    assert len(fake_hubspot.created("tasks")) == 1
    assert searches(fake_hubspot) == 0


def test_storm_every_row_sent_exactly_once(engine, clock, fake_hubspot, make_writer) -> None:
    ops: list[dict[str, Any]] = []
    for i in range(200):
        contact = str(i % 10 + 1)
        at = "2026-11-20T15:00:00Z"
        if i % 4 == 0:
            ops.append({**TASK, "contact_id": contact, "subject": f"task {i}"})
        elif i % 4 == 1:
            ops.append({"op": "create_note", "contact_id": contact, "body": f"n{i}", "at": at})
        else:
            kind = eng.TOUCH_KINDS[i % len(eng.TOUCH_KINDS)]
            ops.append(
                {
                    "op": "create_engagement",
                    "contact_id": contact,
                    "kind": kind,
                    "outcome": "attempt",
                    "note": f"touch {i}",
                    "at": at,
                }
            )
    for i, payload in enumerate(ops):
        add_row(engine, f"storm-{i}", payload, now=clock.now())
    writer = make_writer(max_retries=1)
    fake_hubspot.failure_rate(0.3, seed=20261120)
    fake_hubspot.fail_next(5, status=500, path_contains="/tasks", method="POST", apply=True)

    for _ in range(30):
        deliver_due(engine, writer, now=clock.now())
        clock.advance(timedelta(minutes=11))  # past the longest outbox backoff (10 min)
        with engine.connect() as conn:
            statuses = set(conn.execute(select(outbox.c.status)).scalars())
        if statuses == {"sent"}:
            break
    fake_hubspot.failure_rate(0)

    with engine.connect() as conn:
        rows = conn.execute(select(outbox)).all()
    assert {r.status for r in rows} == {"sent"}
    results = [r.result for r in rows]
    assert max(r.attempts for r in rows) > 1  # the storm really did fail some deliveries
    kinds = ("tasks", "notes", "calls", "emails", "meetings", "communications")
    created = {(k, o["id"]) for k in kinds for o in fake_hubspot.created(k)}
    assert len(created) == 200
    recorded = {(res["object_type"], res["object_id"]) for res in map(json.loads, results)}
    assert recorded == created  # each row points at its own object, and every object has a row
    assert fake_hubspot.errors == []
