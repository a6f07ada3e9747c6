"""Acceptance, end to end: signed HubSpot webhook -> DM at the right frozen-clock time -> signed
"Log touch" -> engagement in (fake) HubSpot -> the ladder stops. Real endpoints, real SDKs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.writeback import HubSpotWriter
from integrations.slack.fake import FakeSlack
from integrations.slack.messages import LOG_TOUCH
from sla_bot.clock import FrozenClock
from sla_bot.fetching import Fetcher
from sla_bot.outbox import deliver_due
from sla_bot.rules import RulesHolder
from sla_bot.services import Services
from sla_bot.web.app import create_app
from sla_bot.worker import slack_deliverer
from tests.conftest import T0, make_settings
from tests.engine.harness import PORTAL, RULES, Harness, ev
from tests.engine.test_end_to_end import CONTACT
from tests.fixtures_slack import SLACK_TEST_TOKEN
from tests.signing import signed_headers
from tests.slack.interact import SIGNING_SECRET, button, selected, signed, submission

M = timedelta(minutes=1)
ALEX = "U0ALEX0001"


def test_webhook_to_dm_to_logged_touch_to_hubspot_and_the_ladder_stops(
    db_url: str,
    engine: Engine,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    hubspot_client: HubSpotClient,
    fake_slack: FakeSlack,
) -> None:
    fake_hubspot.add_contact("901", CONTACT)
    fake_slack.add_user(ALEX, "alex.rep@example.com", "Alex Rep")
    holder = RulesHolder(RULES)
    holder.reload_if_changed()
    settings = make_settings(
        DATABASE_URL=db_url,
        SLACK_BOT_TOKEN=SLACK_TEST_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=fake_slack.base_url,
    )
    services = Services(settings=settings, engine=engine, clock=clock, rules=holder)
    http = create_app(services=services).test_client()
    worker = Harness(
        engine, clock, loaded=holder.current(), fetcher=Fetcher(hubspot_client), deliver=False
    )
    slack, hubspot = slack_deliverer(services), HubSpotWriter({PORTAL: hubspot_client})

    def at(when: datetime) -> None:  # one worker tick, then both deliverers
        worker.at(when)
        deliver_due(engine, slack, now=clock.now())
        deliver_due(engine, hubspot, now=clock.now())

    body = json.dumps([ev("contact.creation", 901, T0)]).encode()
    assert (
        http.post(
            "/webhooks/hubspot", data=body, headers=signed_headers(body, now=clock.now())
        ).status_code
        == 200
    )
    at(T0)
    dm = fake_slack.dm_of(ALEX) or ""
    [assigned] = fake_slack.messages(dm)  # the owner hears at once that the lead is theirs
    assert assigned["text"] == "New lead Dana Lead (Acme) needs a first touch"
    assert "Fri Nov 20, 10:05 AM EST" in str(assigned["blocks"])
    at(T0 + 4 * M - timedelta(seconds=1))
    assert len(fake_slack.all_messages()) == 1  # nothing else before the warning is due
    at(T0 + 4 * M)
    [_, warning] = fake_slack.messages(dm)
    assert warning["text"] == "First touch for Dana Lead (Acme) is due soon"
    assert "Fri Nov 20, 10:05 AM EST" in str(warning["blocks"])

    log_button = next(e for e in warning["blocks"][-1]["elements"] if e["action_id"] == LOG_TOUCH)
    lead_id, version = (int(x) for x in log_button["value"].split(":"))
    interactions = http.application.extensions  # built on first use from the settings
    data, headers = signed(
        button(LOG_TOUCH, ALEX, lead_id, version, dm, warning["ts"]), clock.now()
    )
    assert http.post("/slack/actions", data=data, headers=headers).status_code == 200
    interactions["sla_bot_slack"].runner.wait_idle()
    [view] = fake_slack.views.values()
    values = {
        "kind": selected("call"),
        "outcome": {"selected_option": {"value": "attempt"}},
        "note": {"value": "Left a voicemail & an email"},
    }
    data, headers = signed(submission(view, ALEX, values), clock.now())
    assert http.post("/slack/actions", data=data, headers=headers).status_code == 200
    interactions["sla_bot_slack"].runner.wait_idle()

    at(T0 + 4 * M + timedelta(seconds=30))
    [call] = fake_hubspot.created("calls")
    assert {"to_type": "contacts", "to_id": "901"}.items() <= call["associations"][0].items()
    for minutes in (5, 15, 25, 35):  # the ladder's steps: none of them fires
        at(T0 + minutes * M)
    assert len(fake_slack.all_messages()) == 2
    assert worker.rows("slack", kind="ladder") == []
    assert "Handled: call (attempt)" in str(fake_slack.messages(dm)[0]["blocks"])
