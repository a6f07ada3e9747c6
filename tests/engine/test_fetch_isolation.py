"""The fetcher: one bad contact never stops the others; portals without a client never wait."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot import metrics
from sla_bot.clock import FrozenClock
from sla_bot.db.schema import leads
from sla_bot.engine import audit
from sla_bot.engine.apply import apply_pending
from sla_bot.fetching import Fetcher
from sla_bot.splitter import split_pending
from tests.conftest import T0
from tests.engine.harness import Harness, ev, prop

M = timedelta(minutes=1)
PROPS = {"createdate": T0.isoformat(), "hubspot_owner_id": "1001", "lead_source": "demo_request"}
OTHER = 777  # a portal the token does not cover


def kinds(engine: Engine, lead_id: int) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        return [(r["kind"], r["detail"]) for r in audit.history(conn, lead_id)]


def test_one_bad_contact_does_not_stop_the_leads_behind_it(
    engine: Engine, clock: FrozenClock, fake_hubspot: FakeHubSpot, make_hubspot_client, caplog
) -> None:
    fake_hubspot.add_contact("1", {**PROPS, "num_contacted_notes": "1e999"})  # raised once
    fake_hubspot.add_contact("2", PROPS)
    fake_hubspot.add_contact("3", PROPS)
    fake_hubspot.add_contact("4", PROPS)
    h = Harness(engine, clock, fetcher=Fetcher(make_hubspot_client(max_retries=0)))
    h.webhook(*(ev("contact.creation", i, T0, n=i) for i in (1, 2, 3, 4)))
    split_pending(engine, now=T0)
    apply_pending(engine, h.loaded, now=T0, fetching=True)  # the leads exist, marked for fetching
    with engine.begin() as conn:  # a lead whose stored data no code version can read
        conn.execute(leads.update().where(leads.c.object_id == 4).values(state='{"format": 99}'))

    h.at(T0)
    h.at(T0 + M)

    for healthy in (1, 2, 3):  # an impossible count is ignored, not a crash
        lead = h.lead(healthy)
        assert lead.needs_fetch == 0 and lead.policy == "inbound_demo"
    assert h.lead(1).touches == []
    with engine.connect() as conn:
        (bad,) = conn.execute(select(leads.c.id, leads.c.needs_fetch).where(leads.c.object_id == 4))
    assert bad.needs_fetch == 0  # not fetched again on every tick
    assert ("error", {"stage": "fetch", "error": "ValidationError"}) in kinds(engine, bad.id)
    assert "1e999" not in caplog.text  # CRM values stay out of the log
    reads = [r for r in fake_hubspot.requests if r.path.endswith("/batch/read")]
    assert len(reads) == 1


def test_leads_of_a_portal_the_token_does_not_cover_are_routed_on_their_events(
    engine: Engine, clock: FrozenClock, fake_hubspot: FakeHubSpot, make_hubspot_client, caplog
) -> None:
    counter = metrics.LEADS_UNFETCHED.labels(portal=str(OTHER), reason="not_configured")
    before = counter._value.get()
    fake_hubspot.add_contact("5", PROPS)  # the token's own portal (62515) is fetched as before
    h = Harness(engine, clock, fetcher=Fetcher(make_hubspot_client(max_retries=0)))
    h.webhook(
        ev("contact.creation", 5, T0),
        ev("contact.creation", 9, T0, n=1, portalId=OTHER),
        prop(9, T0, "lead_source", "demo_request", n=2) | {"portalId": OTHER},
        prop(9, T0, "hubspot_owner_id", "1001", n=3) | {"portalId": OTHER},
    )

    with caplog.at_level(logging.WARNING):
        h.at(T0)
        h.webhook(
            ev("contact.creation", 10, T0 + M, n=4, portalId=OTHER),
            prop(10, T0 + M, "lead_source", "demo_request", n=5) | {"portalId": OTHER},
        )
        h.at(T0 + M)
        h.at(T0 + 2 * M)

    with engine.connect() as conn:
        from sla_bot.engine import leads as repo

        other = [repo.find(conn, OTHER, i) for i in (9, 10)]
    for lead in other:
        assert lead is not None and lead.needs_fetch == 0 and lead.policy == "inbound_demo"
        assert lead.next_due_at is not None  # its clock runs: it will be nudged
        assert (
            "not_fetched",
            {"reason": "not_configured", "routed_on": "event properties"},
        ) in kinds(engine, lead.id)
    assert h.lead(5).policy == "inbound_demo"  # the covered portal still fetches
    assert counter._value.get() - before == 2
    lines = [r for r in caplog.records if "no HubSpot token for portal 777" in r.getMessage()]
    assert len(lines) == 1  # once per portal, not per lead or tick
    assert all(
        str(OTHER) not in (r.json or {}).get("inputs", [{}])[0].get("id", "")
        for r in fake_hubspot.requests
        if r.json
    )
