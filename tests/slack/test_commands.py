"""`/sla`: a rep's own open leads, most urgent first, in their time zone; forged requests 401."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from integrations.slack.fake import FakeSlack
from integrations.slack.messages import ACK, LOG_TOUCH, SNOOZE
from sla_bot.clock import FrozenClock
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import T0, make_settings
from tests.fixtures_slack import SLACK_TEST_TOKEN
from tests.slack.interact import SIGNING_SECRET
from tests.slack.test_noise import World, rules_dir

M = timedelta(minutes=1)
ALEX = "U0ALEX0001"


def app_for(world: World, db_url: str, fake: FakeSlack, rules: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(
        DATABASE_URL=db_url,
        SLA_BOT_RULES_DIR=str(rules),
        SLACK_BOT_TOKEN=SLACK_TEST_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=fake.base_url,
    )
    services = Services(
        settings=settings, engine=world.engine, clock=world.clock, rules=world.services.rules
    )
    return create_app(services=services).test_client()


def test_sla_lists_the_callers_open_leads_most_urgent_first_in_their_time(
    db_url: str, engine: Engine, clock: FrozenClock, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    rules = rules_dir(tmp_path, None)
    world = World(db_url, engine, clock, fake_slack, rules)
    fake_slack.add_user(ALEX, "alex.rep@example.com", "Alex Rep", tz="America/Chicago")
    world.lead(7001, T0 + 2 * M)  # Alex's, due 10:07 New York = 9:07 Chicago
    world.lead(7002, T0)  # Alex's, due first
    world.lead(7003, T0, owner="1002")  # Blair's: never in Alex's list
    world.tick(T0 + 3 * M, deliver=False)
    http = app_for(world, db_url, fake_slack, rules)

    body, headers = fake_slack.slash_command(ALEX, SIGNING_SECRET, clock.now().timestamp())
    answer = http.post("/slack/commands", data=body, headers=headers)
    assert answer.status_code == 200
    reply = answer.get_json()
    assert reply["response_type"] == "ephemeral"
    text = json.dumps(reply["blocks"])
    assert "2 open leads" in text and "America/Chicago" in text
    assert "/record/0-1/7003" not in text  # Blair's lead
    first, second = text.index("/record/0-1/7002"), text.index("/record/0-1/7001")
    assert first < second  # most urgent first
    assert "First touch due Fri Nov 20, 9:05 AM CST" in text
    assert "9:07 AM CST" in text
    buttons = [b for b in reply["blocks"] if b["type"] == "actions"]
    assert len(buttons) == 2
    assert [e["action_id"] for e in buttons[0]["elements"]] == [ACK, LOG_TOUCH, SNOOZE]


def test_sla_refuses_a_forged_request_and_answers_a_stranger_kindly(
    db_url: str, engine: Engine, clock: FrozenClock, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    rules = rules_dir(tmp_path, None)
    world = World(db_url, engine, clock, fake_slack, rules)
    http = app_for(world, db_url, fake_slack, rules)
    now = clock.now().timestamp()
    body, headers = fake_slack.slash_command(ALEX, "not-the-secret", now)
    assert http.post("/slack/commands", data=body, headers=headers).status_code == 401
    body, headers = fake_slack.slash_command(ALEX, SIGNING_SECRET, now - 3600)
    assert http.post("/slack/commands", data=body, headers=headers).status_code == 401
    body, headers = fake_slack.slash_command(ALEX, SIGNING_SECRET, now)
    tampered = body.replace(b"U0ALEX0001", b"U0BLAIR001")
    assert http.post("/slack/commands", data=tampered, headers=headers).status_code == 401
    fake_slack.add_user("U0STRANGER", "who@example.com")
    body, headers = fake_slack.slash_command("U0STRANGER", SIGNING_SECRET, now)
    answer = http.post("/slack/commands", data=body, headers=headers)
    assert answer.status_code == 200 and "not a rep" in answer.get_json()["text"]
