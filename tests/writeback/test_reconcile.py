"""reconcile_once: missed webhooks become synthetic contact.sync events; the watermark is safe."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from integrations.hubspot.errors import TransientHubSpotError
from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.models import epoch_ms
from sla_bot.clock import FrozenClock
from sla_bot.db.schema import webhook_batches, webhook_events
from sla_bot.reconcile import DEFAULT_PROPERTIES, get_watermark, reconcile_once
from sla_bot.splitter import split_pending
from tests.conftest import T0
from tests.writeback.util import PORTAL

SEARCH = "/crm/v3/objects/contacts/search"
LAG = timedelta(seconds=30)


def run(engine: Engine, client: Any, clock: FrozenClock, **kw: Any) -> Any:
    return reconcile_once(engine, client, portal_id=PORTAL, now=clock.now(), **kw)


def events(engine: Engine, clock: FrozenClock) -> dict[int, Any]:
    """Split pending batches as the worker would; object id -> its contact.sync event rows."""
    split_pending(engine, now=clock.now())
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_events).order_by(webhook_events.c.id)).all()
    out: dict[int, Any] = {}
    for r in rows:
        assert r.subscription_type == "contact.sync"
        out.setdefault(r.object_id, []).append(r)
    return out


def batches(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(webhook_batches).order_by(webhook_batches.c.id)).all()


def add(fake: FakeHubSpot, oid: int, at: datetime, **props: str) -> None:
    fake.add_contact(str(oid), {"email": f"c{oid}@example.com", **props}, updated_at=at)


def test_modified_contacts_become_sync_events(engine, clock, fake_hubspot, hubspot_client) -> None:
    add(fake_hubspot, 101, T0 - timedelta(minutes=10), hubspot_owner_id="77")
    add(fake_hubspot, 102, T0 - timedelta(hours=5), hs_lead_status="NEW")
    add(fake_hubspot, 103, T0 - timedelta(days=2))  # before the first run's lookback
    add(fake_hubspot, 104, T0 - timedelta(seconds=10))  # inside the lag: next run

    res = run(engine, hubspot_client, clock)

    assert (res.found, res.stored, res.batches) == (2, 2, 1)
    assert (res.since, res.until) == (T0 - timedelta(days=1), T0 - LAG)
    assert get_watermark(engine, PORTAL) == T0 - LAG
    [batch] = batches(engine)
    assert (batch.source, batch.signature_version, batch.received_at) == ("reconcile", "none", T0)
    body = json.loads(batch.body)
    assert [e["objectId"] for e in body] == [102, 101]  # oldest modification first
    first = body[1]
    assert first["subscriptionType"] == "contact.sync"
    assert (first["portalId"], first["eventId"], first["subscriptionId"]) == (PORTAL, 0, 0)
    assert first["occurredAt"] == epoch_ms(T0 - timedelta(minutes=10))
    assert first["changeSource"] == "RECONCILE"
    assert first["properties"]["hubspot_owner_id"] == "77"
    assert first["properties"]["email"] == "c101@example.com"
    assert set(DEFAULT_PROPERTIES) <= set(first["properties"])

    stored = events(engine, clock)
    assert sorted(stored) == [101, 102]
    ev = stored[101][0]
    assert (ev.portal_id, ev.change_source, ev.property_name) == (PORTAL, "RECONCILE", "")
    assert ev.occurred_at_ms == epoch_ms(T0 - timedelta(minutes=10))

    [search] = [r for r in fake_hubspot.requests if r.path == SEARCH]
    filters = search.json["filterGroups"][0]["filters"]
    assert {(f["operator"], f["value"]) for f in filters} == {
        ("GTE", str(epoch_ms(T0 - timedelta(days=1)))),
        ("LT", str(epoch_ms(T0 - LAG))),
    }


def test_a_run_with_nothing_new_stores_nothing_and_moves_on(
    engine, clock, fake_hubspot, hubspot_client
) -> None:
    add(fake_hubspot, 201, T0 - timedelta(minutes=10))
    add(fake_hubspot, 202, T0 - timedelta(minutes=1))  # falls in the next run's overlap
    assert run(engine, hubspot_client, clock).stored == 2
    events(engine, clock)

    clock.advance(timedelta(minutes=5))
    res = run(engine, hubspot_client, clock)

    assert res.since == T0 - LAG - timedelta(minutes=2)  # watermark minus the overlap
    assert (res.found, res.stored, res.batches) == (1, 0, 0)  # 202 again, already known
    assert len(batches(engine)) == 1
    assert get_watermark(engine, PORTAL) == clock.now() - LAG


def test_lagging_and_late_indexed_contacts_are_caught_next_run(
    engine, clock, fake_hubspot, hubspot_client
) -> None:
    add(fake_hubspot, 301, T0 - timedelta(seconds=10))  # too fresh for the first window
    assert run(engine, hubspot_client, clock).stored == 0
    # Modified before the watermark but only indexed after the first run searched.
    add(fake_hubspot, 302, T0 - timedelta(seconds=90))

    clock.advance(timedelta(minutes=5))
    assert run(engine, hubspot_client, clock).stored == 2
    assert sorted(events(engine, clock)) == [301, 302]


def test_hubspot_down_keeps_the_watermark_and_the_next_run_catches_up(
    engine, clock, fake_hubspot, make_hubspot_client
) -> None:
    client = make_hubspot_client(max_retries=2)
    add(fake_hubspot, 401, T0 - timedelta(hours=1))
    fake_hubspot.fail_next(3, status=503, path_contains=SEARCH)

    with pytest.raises(TransientHubSpotError, match="HTTP 503"):
        run(engine, client, clock)
    assert get_watermark(engine, PORTAL) is None
    assert batches(engine) == []

    add(fake_hubspot, 402, T0 + timedelta(minutes=2))  # changed while HubSpot was down
    clock.advance(timedelta(minutes=5))
    res = run(engine, client, clock)
    assert res.since == T0 + timedelta(minutes=5) - timedelta(days=1)
    assert sorted(events(engine, clock)) == [401, 402]
    assert get_watermark(engine, PORTAL) == clock.now() - LAG


def test_failures_mid_window_lose_nothing(engine, clock, fake_hubspot, make_hubspot_client) -> None:
    client = make_hubspot_client(max_retries=0, search_page_size=50)
    for i in range(250):
        add(fake_hubspot, 5000 + i, T0 - timedelta(hours=3) + i * timedelta(seconds=7))
    fake_hubspot.failure_rate(0.25, statuses=(503,), seed=7, path_contains=SEARCH)

    failures = 0
    for _ in range(40):
        try:
            run(engine, client, clock)
            break
        except TransientHubSpotError:
            failures += 1
            assert get_watermark(engine, PORTAL) is None
            clock.advance(timedelta(minutes=1))
    fake_hubspot.failure_rate(0)

    assert failures > 0 and get_watermark(engine, PORTAL) == clock.now() - LAG
    # Failed runs stored part of the window; a page fetched again is the same body, stored once.
    stored_batches = batches(engine)
    assert len(stored_batches) == len({row.body for row in stored_batches})
    stored = events(engine, clock)
    assert sorted(stored) == [5000 + i for i in range(250)]
    assert all(len(rows) == 1 for rows in stored.values())  # repeats deduplicated


def test_more_contacts_than_the_search_cap_are_all_found(
    engine, clock, fake_hubspot, make_hubspot_client
) -> None:
    fake_hubspot.search_cap = 100
    client = make_hubspot_client(search_page_size=50)
    for i in range(120):
        add(fake_hubspot, 6000 + i, T0 - timedelta(hours=2) + i * timedelta(seconds=1))
    bulk = T0 - timedelta(hours=1)
    for i in range(130):  # a bulk import: 130 contacts in one millisecond
        add(fake_hubspot, 7000 + i, bulk)

    res = run(engine, client, clock)

    assert (res.found, res.stored, res.batches) == (250, 250, 3)
    assert [len(json.loads(b.body)) for b in batches(engine)] == [100, 100, 50]
    assert len(events(engine, clock)) == 250
    searches = [r for r in fake_hubspot.requests if r.path == SEARCH]
    assert all(r.status == 200 and "after" not in r.json for r in searches)


def test_searches_go_through_the_search_rate_limiter(
    engine, clock, fake_hubspot, make_hubspot_client, hubspot_clock
) -> None:
    client = make_hubspot_client(search_page_size=10)
    for i in range(85):
        add(fake_hubspot, 8000 + i, T0 - timedelta(hours=1) + i * timedelta(seconds=1))
    assert run(engine, client, clock).stored == 85
    assert len([r for r in fake_hubspot.requests if r.path == SEARCH]) == 10
    assert sum(hubspot_clock.sleeps) == pytest.approx(2.0)  # 4 per second: 4 + 4 + 2


def test_the_callers_properties_are_fetched(engine, clock, fake_hubspot, hubspot_client) -> None:
    add(fake_hubspot, 901, T0 - timedelta(minutes=3), lead_source="demo_request")
    run(engine, hubspot_client, clock, properties=["lead_source"])
    [search] = [r for r in fake_hubspot.requests if r.path == SEARCH]
    assert set(search.json["properties"]) == {
        "lead_source",
        "createdate",
        "lastmodifieddate",
        "hubspot_owner_id",
    }
    [event] = json.loads(batches(engine)[0].body)
    assert event["properties"]["lead_source"] == "demo_request"


def test_a_clock_behind_the_watermark_does_nothing(
    engine, clock, fake_hubspot, hubspot_client
) -> None:
    run(engine, hubspot_client, clock)
    clock.set(T0 - timedelta(minutes=10))
    res = run(engine, hubspot_client, clock)
    assert res.stored == 0 and res.watermark == T0 - LAG
    assert get_watermark(engine, PORTAL) == T0 - LAG
    assert len([r for r in fake_hubspot.requests if r.path == SEARCH]) == 1


def test_watermarks_are_per_portal(engine, clock, fake_hubspot, hubspot_client) -> None:
    run(engine, hubspot_client, clock)
    assert get_watermark(engine, PORTAL) == T0 - LAG
    assert get_watermark(engine, PORTAL + 1) is None
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_batches)).scalar() == 0
