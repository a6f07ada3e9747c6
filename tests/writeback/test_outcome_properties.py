"""Outcome properties: `sla-bot hubspot setup` creates them through the CRM properties API
(idempotently), and then the engine writes each lead's outcome to HubSpot through the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.errors import PermanentHubSpotError
from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.properties import SetupError, ensure_properties
from integrations.hubspot.writeback import HubSpotWriter, SinglePortal
from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from sla_bot.db.engine import write_transaction
from sla_bot.engine.outcome_properties import GROUP, PROPERTIES
from sla_bot.engine.outcome_store import mark_writeback
from sla_bot.outbox import deliver_due
from tests.conftest import T0
from tests.engine.harness import PORTAL, Harness, prop
from tests.engine.test_events import PROPS
from tests.fixtures_hubspot import HUBSPOT_TEST_TOKEN
from tests.outcomes.util import contact

M = timedelta(minutes=1)
NAMES = [p.name for p in PROPERTIES]


def test_setup_creates_the_group_and_properties_once(
    fake_hubspot: FakeHubSpot, hubspot_client: HubSpotClient
) -> None:
    first = ensure_properties(hubspot_client)
    assert [(d.kind, d.name, d.result) for d in first] == [
        ("group", GROUP, "created"),
        *(("property", name, "created") for name in NAMES),
    ]
    assert fake_hubspot.property_group(GROUP)["label"] == "SLA bot"
    sla = fake_hubspot.property_definition("sla_bot_first_touch_sla")
    assert (sla["type"], sla["fieldType"], sla["groupName"]) == ("enumeration", "select", GROUP)
    assert [o["value"] for o in sla["options"]] == ["met", "breached"]
    again = ensure_properties(hubspot_client)
    assert {d.result for d in again} == {"exists"}
    posts = [r for r in fake_hubspot.requests if r.method == "POST" and "/properties/" in r.path]
    assert len(posts) == 1 + len(NAMES)  # nothing created twice


def test_setup_mends_labels_and_options_but_never_a_type(
    fake_hubspot: FakeHubSpot, hubspot_client: HubSpotClient
) -> None:
    ensure_properties(hubspot_client)
    hubspot_client.update_property(
        "contacts",
        "sla_bot_outcome",
        {
            "label": "Renamed by someone",
            "options": [{"value": "converted", "label": "Won", "displayOrder": 0}],
        },
    )
    done = {d.name: d.result for d in ensure_properties(hubspot_client)}
    assert done["sla_bot_outcome"] == "updated" and done["sla_bot_policy"] == "exists"
    outcome = fake_hubspot.property_definition("sla_bot_outcome")
    assert outcome["label"] == "Lead outcome (sla-bot)"
    assert [o["value"] for o in outcome["options"]] == ["converted", "recycled", "disqualified"]

    fake_hubspot.reset()
    hubspot_client.create_property_group("contacts", GROUP, "SLA bot")
    hubspot_client.create_property(
        "contacts",
        {
            "name": "sla_bot_policy",
            "label": "x",
            "type": "number",
            "fieldType": "number",
            "groupName": GROUP,
        },
    )
    with pytest.raises(SetupError, match="sla_bot_policy exists as number/number"):
        ensure_properties(hubspot_client)


def test_hubspot_validates_what_setup_defined(
    fake_hubspot: FakeHubSpot, hubspot_client: HubSpotClient
) -> None:
    fake_hubspot.add_contact("901", {"email": "a@example.com"})
    with pytest.raises(PermanentHubSpotError, match="PROPERTY_DOESNT_EXIST"):
        hubspot_client.update_contact("901", {"sla_bot_first_touch_sla": "met"})
    ensure_properties(hubspot_client)
    hubspot_client.update_contact("901", {"sla_bot_first_touch_sla": "met"})
    with pytest.raises(PermanentHubSpotError, match="INVALID_OPTION"):
        hubspot_client.update_contact("901", {"sla_bot_first_touch_sla": "late"})
    with pytest.raises(PermanentHubSpotError, match="INVALID_INTEGER"):
        hubspot_client.update_contact("901", {"sla_bot_touches_before_outcome": "many"})


def test_the_setup_command_needs_the_schema_scope_and_turns_writing_on(
    engine: Engine,
    db_url: str,
    fake_hubspot: FakeHubSpot,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", HUBSPOT_TEST_TOKEN)
    monkeypatch.setenv("HUBSPOT_API_BASE_URL", fake_hubspot.base_url)
    missing_scope = {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "category": "MISSING_SCOPES",
    }
    fake_hubspot.fail_next(1, 403, path_contains="/properties/", body=missing_scope)
    assert main(["hubspot", "setup"]) == 1
    assert "needs the scope crm.schemas.contacts.write" in capsys.readouterr().err
    assert main(["hubspot", "setup"]) == 0
    out = capsys.readouterr().out
    assert f"group {GROUP}: created" in out and f"portal {PORTAL}: outcome properties" in out
    from sla_bot.engine.outcome_store import writeback_portals

    with engine.connect() as conn:
        assert writeback_portals(conn, [PORTAL, 1]) == {PORTAL}


def _deliver(engine: Engine, client: HubSpotClient, clock: FrozenClock) -> Any:
    return deliver_due(engine, HubSpotWriter(SinglePortal(client, PORTAL)), now=clock.now())


def test_outcomes_are_written_back_through_the_outbox_once_set_up(
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    hubspot_client: HubSpotClient,
) -> None:
    ensure_properties(hubspot_client)
    for oid in ("1", "2"):
        fake_hubspot.add_contact(oid, {"email": f"{oid}@example.com", "hs_lead_status": "NEW"})
    h = Harness(engine, clock, deliver=False)
    h.webhook(contact(1, PROPS))
    h.at(T0)
    h.at(T0 + 5 * M)  # breached: not set up yet, nothing is written
    assert [r for r in h.rows("hubspot") if "outcome" in (r["step"] or "")] == []
    with write_transaction(engine) as conn:
        mark_writeback(conn, PORTAL, now=clock.now())
    h.webhook(contact(2, {**PROPS, "createdate": (T0 + 6 * M).isoformat()}, at=T0 + 6 * M))
    h.at(T0 + 6 * M)
    h.webhook(prop(1, T0 + 7 * M, "num_contacted_notes", 1, n=1))
    h.webhook(prop(2, T0 + 8 * M, "num_contacted_notes", 1, n=2))
    h.at(T0 + 8 * M)
    h.webhook(prop(2, T0 + 9 * M, "hs_lead_status", "UNQUALIFIED", n=3))
    h.at(T0 + 9 * M)
    h.at(T0 + 10 * M)  # deciding again writes nothing new
    steps = sorted((r["object_id"], r["step"]) for r in h.rows("hubspot") if "outcome" in r["step"])
    assert steps == [
        (1, "outcome.first_touch"),
        (2, "outcome.disqualified@20261120T150900Z"),
        (2, "outcome.first_touch"),
    ]
    _deliver(engine, hubspot_client, clock)
    one, two = fake_hubspot.contacts["1"], fake_hubspot.contacts["2"]
    assert one["sla_bot_first_touch_sla"] == "breached"
    assert one["sla_bot_first_touch_at"] == "2026-11-20T15:07:00.000Z"
    assert one["sla_bot_business_minutes_to_first_touch"] == "7.0"
    assert one["sla_bot_policy"] == "inbound_demo"
    assert two["sla_bot_first_touch_sla"] == "met"
    assert two["sla_bot_business_minutes_to_first_touch"] == "2.0"
    assert (two["sla_bot_outcome"], two["sla_bot_touches_before_outcome"]) == ("disqualified", "1")
    assert all(r["status"] == "sent" for r in h.rows("hubspot") if "outcome" in r["step"])
