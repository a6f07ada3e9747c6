"""`--from-hubspot`: leads the service has no record of, rebuilt from HubSpot's search API."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.fake import FakeHubSpot
from sla_bot.backtest.from_hubspot import add_inputs, rebuild, touch_times
from sla_bot.backtest.history import History
from sla_bot.backtest.load import Period
from sla_bot.backtest.replay import replay
from sla_bot.cli import main
from tests.conftest import T0
from tests.engine.harness import PORTAL, RULES, load_rules

M = timedelta(minutes=1)
PERIOD = Period(T0 - timedelta(days=1), T0 + timedelta(days=2))


def _contact(**extra: Any) -> dict[str, Any]:
    return {
        "createdate": T0.isoformat(),
        "lastmodifieddate": (T0 + 30 * M).isoformat(),
        "hubspot_owner_id": "1001",
        "hubspot_owner_assigneddate": T0.isoformat(),
        "lead_source": "demo_request",
        "firstname": "Old",
        "num_contacted_notes": "3",
        "hs_sa_first_engagement_date": (T0 + 7 * M).isoformat(),
        "notes_last_contacted": (T0 + 20 * M).isoformat(),
        **extra,
    }


def test_touch_times_are_exact_at_both_ends_and_spread_between() -> None:
    got = touch_times(_contact(), T0)
    assert got == [T0 + 7 * M, T0 + 13 * M + timedelta(seconds=30), T0 + 20 * M]
    assert touch_times(_contact(num_contacted_notes="1"), T0) == [T0 + 7 * M]
    no_first = _contact(num_contacted_notes="1", hs_sa_first_engagement_date=None)
    assert touch_times(no_first, T0) == [T0 + 20 * M]
    assert touch_times(_contact(num_contacted_notes="0"), T0) == []


def test_an_owner_assigned_later_and_a_status_come_in_later(fake_hubspot: FakeHubSpot) -> None:
    values = _contact(
        hubspot_owner_assigneddate=(T0 + 2 * M).isoformat(), hs_lead_status="UNQUALIFIED"
    )
    batches = rebuild(PORTAL, 9, values)
    assert [b.at for b in batches] == [
        T0,
        T0 + 2 * M,
        T0 + 7 * M,
        T0 + 810 * timedelta(seconds=1),
        T0 + 20 * M,
        T0 + 30 * M,
    ]
    assert "hubspot_owner_id" not in batches[0].events[0].raw["properties"]
    assert batches[-1].events[0].property_value == "UNQUALIFIED"


def test_leads_found_only_in_hubspot_are_replayed(
    fake_hubspot: FakeHubSpot, make_hubspot_client: Any
) -> None:
    fake_hubspot.add_contact("7001", _contact())  # first touch at 7m: breached
    fake_hubspot.add_contact("7002", _contact(hs_sa_first_engagement_date=(T0 + 3 * M).isoformat()))
    fake_hubspot.add_contact("7003", _contact())  # known to the service: not asked twice
    fake_hubspot.add_contact("7004", _contact(createdate=(T0 - timedelta(days=3)).isoformat()))
    client: HubSpotClient = make_hubspot_client(search_page_size=1)
    history = History([], lead_ids={(PORTAL, 7003): 1})
    loaded = load_rules()
    assert add_inputs(history, {PORTAL: client}, loaded.ruleset, PERIOD) == 2
    assert history.leads() == {(PORTAL, 7001), (PORTAL, 7002)}
    assert any("only their count is known" in note for note in history.unknown)
    out = replay(history, loaded, until=PERIOD.end, keep=True)
    lead = out.leads[(PORTAL, 7001)]
    assert [t.at for t in lead.touches] == touch_times(_contact(), T0)
    fired = {(lid, d["step"]) for lid, _, kind, d in out.audit if kind == "step.fired"}
    breached = {lid for lid, step in fired if step == "first_touch.breach"}
    assert breached == {out.leads[(PORTAL, 7001)].id}
    # Only searches (keyset paged: one contact per page here), within the search budget.
    paths = {r.path for r in fake_hubspot.requests}
    assert paths == {"/crm/v3/objects/contacts/search"}
    assert len(fake_hubspot.requests) >= 3
    filters = fake_hubspot.requests[0].json["filterGroups"][0]["filters"]
    assert {f["propertyName"] for f in filters} == {"createdate"}


def test_the_cli_adds_them_and_says_what_it_cannot_know(
    engine: Engine,
    db_url: str,
    fake_hubspot: FakeHubSpot,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.fixtures_hubspot import HUBSPOT_TEST_TOKEN

    fake_hubspot.add_contact("7001", _contact())
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLA_BOT_RULES_DIR", str(RULES))
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", HUBSPOT_TEST_TOKEN)
    monkeypatch.setenv("HUBSPOT_API_BASE_URL", fake_hubspot.base_url)
    args = ["--from", PERIOD.start.isoformat(), "--to", PERIOD.end.isoformat()]
    assert main(["rules", "backtest", *args, "--from-hubspot", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["history"]["from_hubspot"] == 1
    assert out["totals"]["breaches"] == 1
    assert any("rebuilt from HubSpot" in note for note in out["history"]["unknown"])
