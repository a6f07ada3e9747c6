"""Acceptance: a contact through the whole lifecycle, fake HubSpot, a clock the test moves."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import FrozenClock
from sla_bot.fetching import Fetcher
from tests.conftest import T0
from tests.engine.harness import Harness, ev, prop

M = timedelta(minutes=1)
CONTACT = {
    "createdate": T0.isoformat(),
    "lastmodifieddate": T0.isoformat(),
    "hubspot_owner_id": "1001",
    "lead_source": "demo_request",
    "firstname": "Dana",
    "lastname": "Lead",
    "email": "dana@example.com",
    "company": "Acme",
    "num_contacted_notes": "0",
}


def _keys(h: Harness, since: int = 0) -> list[str]:
    return [r["idempotency_key"].split(":", 2)[2] for r in h.rows()[since:]]


def test_first_touch_ladder_then_cadence_then_recycle(
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    hubspot_client: HubSpotClient,
) -> None:
    fake_hubspot.add_contact("901", CONTACT)
    h = Harness(engine, clock, fetcher=Fetcher(hubspot_client))
    h.webhook(ev("contact.creation", 901, T0))
    h.at(T0)
    lead = h.lead(901)
    assert lead.policy == "inbound_demo" and lead.policy_snapshot is not None
    assert lead.properties["firstname"] == "Dana"  # fetched through the SDK
    # The owner hears at once that the lead is theirs, with its deadline.
    assert _keys(h) == ["lead.assigned@20261120T150000Z:owner:1001"]
    assert h.rows()[0]["payload"]["deadline"] == (T0 + 5 * M).isoformat()
    # 5 business minutes, warning at 80%: each step exactly when the policy says, not before.
    assert lead.next_due_at == T0 + 4 * M
    h.at(T0 + 4 * M - timedelta(seconds=1))
    assert len(h.rows()) == 1
    h.at(T0 + 4 * M)
    assert _keys(h, 1) == ["first_touch.warning:owner:1001"]
    warning = h.rows()[1]["payload"]
    assert warning["kind"] == "first_touch.warning"
    assert warning["deadline"] == (T0 + 5 * M).isoformat()
    assert warning["lead"]["name"] == "Dana Lead" and warning["recipient"]["owner_id"] == "1001"
    h.at(T0 + 5 * M)  # breach + ladder.1 (after 0m): the owner
    assert _keys(h, 2) == ["ladder.1:owner:1001"]
    h.at(T0 + 15 * M)  # ladder.2: the manager
    assert set(_keys(h, 3)) == {
        "ladder.2:manager:sam.manager@example.com",
        "ladder.2:hubspot:create_note",  # an escalation is explained on the contact
    }
    assert h.rows("slack")[-1]["payload"]["recipient"]["role"] == "manager"
    h.at(T0 + 25 * M)  # ladder.3: round robin to the next rep, who is told, and so is Alex
    new = _keys(h, 5)
    assert set(new) == {
        "ladder.3:hubspot:owner",
        "ladder.3:hubspot:create_note",
        "ladder.3.reassigned:owner:1001",
        "ladder.3.reassigned:owner:1002",
    }
    owner_row = h.rows("hubspot", kind="update_contact")[0]["payload"]
    assert owner_row == {
        "op": "update_contact",
        "contact_id": "901",
        "properties": {"hubspot_owner_id": "1002"},
        "unless_changed": {"hubspot_owner_id": "1001"},  # never over a newer owner in HubSpot
    }
    assert h.lead(901).owner_id == "1002"
    reassigned = [r["payload"] for r in h.rows("slack", kind="reassigned")]
    assert {p["new_owner"]["name"] for p in reassigned} == {"Blair Rep"}
    assert {p["old_owner"]["name"] for p in reassigned} == {"Alex Rep"}

    # The first touch (0 -> 1) stops the ladder (ladder.4 at +35m never comes) and starts the
    # cadence: the next touch is due within 2 business days.
    before = len(h.rows())
    h.webhook(prop(901, T0 + 30 * M, "num_contacted_notes", 1))
    h.at(T0 + 30 * M)
    lead = h.lead(901)
    assert len(lead.touches) == 1 and lead.touches[0].owner_id == "1002"  # attribution
    assert lead.next_due_at == datetime.fromisoformat("2026-11-24T15:30:00+00:00")
    h.at(T0 + 2 * timedelta(hours=1))
    assert len(h.rows()) == before

    # Touches 2..12 an hour apart, no connect: the 12th uses the cadence up -> recycle.
    for k in range(2, 13):
        at = T0 + 30 * M + (k - 1) * timedelta(hours=1)
        h.webhook(prop(901, at, "num_contacted_notes", k, n=k))
        h.at(at)
    recycle = {r["kind"]: r["payload"] for r in h.rows() if r["idempotency_key"].count("recycle")}
    assert recycle["update_contact"]["properties"] == {"hs_lead_status": "NURTURE"}
    assert "No connect after the full inbound cadence" in recycle["create_note"]["body"]
    assert recycle["recycle"]["recipient"]["slack"] == "#marketing-nurture"
    assert recycle["recycle"]["touches"]["count"] == 12
    lead = h.lead(901)
    assert lead.status == "closed" and lead.closed_reason == "recycled"
    assert lead.next_due_at is None
    keys = [r["idempotency_key"] for r in h.rows()]
    assert len(keys) == len(set(keys))


def test_disqualified_at_touch_three_of_eight_is_premature(
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    hubspot_client: HubSpotClient,
) -> None:
    fake_hubspot.add_contact("902", CONTACT)
    h = Harness(engine, clock, fetcher=Fetcher(hubspot_client))
    h.webhook(ev("contact.creation", 902, T0))
    h.at(T0)
    for k in (1, 2, 3):
        h.webhook(prop(902, T0 + k * M, "num_contacted_notes", k, n=k))
    h.at(T0 + 3 * M)
    h.webhook(prop(902, T0 + 10 * M, "hs_lead_status", "UNQUALIFIED", n=9))
    h.at(T0 + 10 * M)
    rows = h.rows("slack", kind="disqualification.premature")
    assert {r["payload"]["recipient"]["role"] for r in rows} == {"owner", "manager"}
    assert all(r["payload"]["touches"]["count"] == 3 for r in rows)
    assert h.rows("hubspot", kind="create_note")
    h.at(T0 + 3 * timedelta(days=1))  # decided once, and the disqualified lead goes quiet
    assert len(h.rows("slack", kind="disqualification.premature")) == 2
    assert h.lead(902).closed_reason == "disqualified"
