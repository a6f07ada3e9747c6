"""Event processing: deletion, merge, unknown types, reconciliation syncs, ordering, no token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import FrozenClock, to_epoch_ms
from sla_bot.db.schema import webhook_events
from sla_bot.fetching import Fetcher
from tests.conftest import T0
from tests.engine.harness import PORTAL, Harness, ev, prop

M = timedelta(minutes=1)
PROPS = {"createdate": T0.isoformat(), "hubspot_owner_id": "1001", "lead_source": "demo_request"}


def _sync(object_id: int, props: dict, at=T0) -> dict:
    return {
        "subscriptionType": "contact.sync",
        "portalId": PORTAL,
        "objectId": object_id,
        "occurredAt": to_epoch_ms(at),
        "eventId": 0,
        "subscriptionId": 0,
        "properties": props,
    }


def _outcomes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_events.c.subscription_type, webhook_events.c.outcome))
        return {r.subscription_type: r.outcome for r in rows}


def test_without_a_token_events_carry_enough(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)  # no fetcher: go ahead with what the events say
    h.webhook(_sync(1, PROPS), source="reconcile")
    h.webhook(ev("contact.someNewThing", 1, T0, n=5))
    h.at(T0)
    lead = h.lead(1)
    assert lead.policy == "inbound_demo" and lead.next_due_at == T0 + 4 * M
    assert _outcomes(engine) == {
        "contact.sync": "applied",
        "contact.someNewThing": "ignored:contact.someNewThing",
    }


def test_property_changes_apply_in_occurred_order_and_stale_values_lose(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(2, PROPS))
    h.webhook(prop(2, T0 + 2 * M, "hs_lead_status", "CONNECTED", n=2))
    h.webhook(prop(2, T0 + 1 * M, "hs_lead_status", "NEW", n=1))  # arrives late, is older
    h.at(T0 + 3 * M)
    assert h.lead(2).properties["hs_lead_status"] == "CONNECTED"
    h.webhook(prop(2, T0, "hs_lead_status", "OPEN", n=3))  # older than what was applied
    h.at(T0 + 4 * M)
    assert h.lead(2).properties["hs_lead_status"] == "CONNECTED"


def test_deletion_and_merge_close_the_lead_and_cancel_unsent_rows(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock, deliver=False)  # the warnings stay undelivered
    for oid in (3, 4, 5):
        h.webhook(_sync(oid, PROPS))
    h.at(T0 + 4 * M)  # the warnings are decided
    assert len(h.rows("slack")) == 3
    h.webhook(ev("contact.deletion", 3, T0 + 5 * M, n=1))
    h.webhook(ev("contact.merge", 5, T0 + 5 * M, n=2, mergedObjectIds=[4, 5], primaryObjectId=5))
    h.at(T0 + 5 * M)
    assert (h.lead(3).status, h.lead(3).closed_reason) == ("closed", "deleted")
    assert (h.lead(4).status, h.lead(4).closed_reason) == ("closed", "merged")
    assert h.lead(4).state.merged_into == 5
    assert h.lead(5).status == "open"
    statuses = {r["lead_id"]: r["status"] for r in h.rows("slack", kind="first_touch.warning")}
    assert statuses[h.lead(3).id] == "cancelled" and statuses[h.lead(4).id] == "cancelled"
    h.at(T0 + timedelta(hours=2))  # closed leads are never decided again
    assert not [
        r
        for r in h.rows("slack")
        if r["lead_id"] in (h.lead(3).id, h.lead(4).id) and r["kind"] != "first_touch.warning"
    ]


def test_hubspot_down_keeps_leads_marked_and_retries_with_backoff(
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    make_hubspot_client,
) -> None:
    fake_hubspot.add_contact("6", {**PROPS, "lastmodifieddate": T0.isoformat()})
    fetcher = Fetcher(make_hubspot_client(max_retries=0))
    h = Harness(engine, clock, fetcher=fetcher)
    fake_hubspot.fail_next(3, status=503)
    h.webhook(ev("contact.creation", 6, T0))
    h.at(T0)
    lead = h.lead(6)
    assert lead.needs_fetch == 1 and lead.policy is None  # not dropped, not guessed
    assert fetcher.retry_at is not None and fetcher.retry_at > T0
    h.at(fetcher.retry_at)
    h.at(fetcher.retry_at)
    h.at(T0 + timedelta(minutes=10))
    lead = h.lead(6)
    assert lead.needs_fetch == 0 and lead.policy == "inbound_demo"
    # The clock ran from createdate while HubSpot was down: the owner hears now, once, with
    # the latest state (the breach), not a burst of every step that fell due meanwhile.
    owner = [r for r in h.rows("slack") if r["payload"]["recipient"]["role"] == "owner"]
    assert [(r["kind"], r["step"]) for r in owner] == [("ladder", "ladder.1")]
