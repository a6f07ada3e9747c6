"""POST /slack/actions through Flask: signatures, who may act, and what each button does."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.slack.deliverer import SlackDeliverer
from integrations.slack.fake import FakeSlack
from integrations.slack.handlers import MANAGERS_ONLY, NOT_ALLOWED, Interactions
from integrations.slack.interactivity import verify
from integrations.slack.messages import ACK, LOG_TOUCH, REASSIGN, SNOOZE
from sla_bot.clock import FrozenClock
from sla_bot.db.schema import outbox, slack_threads
from sla_bot.outbox import deliver_due
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.slack.helpers import RULES, payload
from tests.slack.interact import (
    SIGNING_SECRET,
    button,
    get_lead,
    make_lead,
    selected,
    signed,
    submission,
)

VECTOR = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors/slack-signature.json").read_text()
)
ALEX, CASEY, SAM, ADMIN, OTHER = (
    "U0ALEX0001",
    "U0CASEY001",
    "U0MANAGER1",
    "U0ADMIN001",
    "U0OTHER001",
)


@pytest.fixture
def slack(workspace: FakeSlack, slack_client: WebClient, engine: Engine, clock: FrozenClock):
    interactions = Interactions(slack_client, engine, clock, rules=RULES, admins=frozenset({ADMIN}))
    yield interactions
    interactions.runner.wait_idle()


@pytest.fixture
def http(db_url: str, engine: Engine, clock: FrozenClock, slack: Interactions) -> FlaskClient:
    settings = make_settings(DATABASE_URL=db_url, SLACK_SIGNING_SECRET=SIGNING_SECRET)
    app = create_app(services=Services(settings=settings, engine=engine, clock=clock))
    app.extensions["sla_bot_slack"] = slack
    return app.test_client()


@pytest.fixture
def lead(engine: Engine, clock: FrozenClock, deliverer: SlackDeliverer) -> dict[str, Any]:
    """A lead owned by Alex, nudged in Alex's DM (the message the buttons are on)."""
    lead_id = make_lead(engine, clock.now())
    from sla_bot.outbox import enqueue

    with engine.begin() as conn:
        body = payload(lead_id, clock.now())
        body["lead"]["version"] = 0
        enqueue(
            conn,
            key="nudge",
            channel="slack",
            kind=body["kind"],
            payload=body,
            portal_id=1,
            now=clock.now(),
            lead_id=lead_id,
        )
    deliver_due(engine, deliverer, now=clock.now())
    with engine.connect() as conn:
        root = conn.execute(select(slack_threads)).one()
    return {"id": lead_id, "channel": root.channel, "ts": root.ts}


def press(http: FlaskClient, slack: Interactions, clock: FrozenClock, body: dict) -> Any:
    data, headers = signed(body, clock.now())
    response = http.post("/slack/actions", data=data, headers=headers)
    slack.runner.wait_idle()
    return response


def ephemerals_for(fake: FakeSlack, user: str) -> list[str]:
    return [e["text"] for e in fake.ephemerals if e["user"] == user]


def test_the_official_vector_verifies_only_inside_its_window() -> None:
    body, ts = VECTOR["body"].encode(), int(VECTOR["timestamp"])
    headers = {
        "X-Slack-Request-Timestamp": VECTOR["timestamp"],
        "X-Slack-Signature": VECTOR["signature"],
    }
    secret = VECTOR["signing_secret"]
    assert verify(secret, body, headers, now=ts) is None
    assert verify(secret, body, headers, now=ts - 299) is None
    assert verify(secret, body, headers, now=ts + 301).startswith("stale")
    assert verify(secret, body, headers, now=ts - 301).startswith("stale")
    assert verify(secret, body + b"x", headers, now=ts) == "invalid Slack signature"
    bad_ts = {**headers, "X-Slack-Request-Timestamp": "abc"}
    assert verify(secret, body, bad_ts, now=ts) == "invalid Slack request timestamp"
    assert verify(secret, body, {}, now=ts) == "missing Slack signature headers"


def test_forged_request_changes_nothing(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    calls = len(workspace.calls)
    body, headers = signed(
        button(ACK, ALEX, lead["id"], 0, lead["channel"], lead["ts"]),
        clock.now(),
        secret="not-the-secret",
    )
    response = http.post("/slack/actions", data=body, headers=headers)
    slack.runner.wait_idle()
    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid Slack signature"}
    assert get_lead(engine, lead["id"]).version == 0
    assert len(workspace.calls) == calls


def test_stale_request_changes_nothing(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    body, headers = signed(
        button(ACK, ALEX, lead["id"], 0, lead["channel"], lead["ts"]),
        clock.now() - timedelta(minutes=6),
    )
    response = http.post("/slack/actions", data=body, headers=headers)
    slack.runner.wait_idle()
    assert response.status_code == 401 and "stale" in response.get_json()["error"]
    assert get_lead(engine, lead["id"]).version == 0
    assert workspace.ephemerals == []


def test_reassign_pressed_by_the_owner_is_refused(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    response = press(
        http, slack, clock, button(REASSIGN, ALEX, lead["id"], 0, lead["channel"], lead["ts"])
    )
    assert response.status_code == 200
    assert ephemerals_for(workspace, ALEX) == [MANAGERS_ONLY]
    assert get_lead(engine, lead["id"]).owner_id == "1001"
    assert workspace.views == {}


def test_a_stranger_may_not_act(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    press(http, slack, clock, button(ACK, OTHER, lead["id"], 0, "C0SALES001", "1.1"))
    assert ephemerals_for(workspace, OTHER) == [NOT_ALLOWED]
    assert get_lead(engine, lead["id"]).version == 0


def test_on_it_acknowledges_and_marks_the_message(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    press(http, slack, clock, button(ACK, ALEX, lead["id"], 0, lead["channel"], lead["ts"]))
    ack = get_lead(engine, lead["id"]).state.ack
    assert ack is not None and ack.by == ALEX
    assert ack.until == clock.now() + timedelta(minutes=30)
    [text] = ephemerals_for(workspace, ALEX)
    assert text.startswith("Got it")
    [root] = workspace.messages(lead["channel"])
    assert "On it since" in str(root["blocks"][0])
    assert root["blocks"][-1]["elements"][0]["value"] == f"{lead['id']}:1"  # fresh version


def test_a_button_from_an_old_state_is_already_handled(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    press(http, slack, clock, button(ACK, ALEX, lead["id"], 0, lead["channel"], lead["ts"]))
    version = get_lead(engine, lead["id"]).version
    press(http, slack, clock, button(SNOOZE, ALEX, lead["id"], 0, lead["channel"], lead["ts"]))
    assert ephemerals_for(workspace, ALEX)[-1].startswith("Already handled")
    assert get_lead(engine, lead["id"]).version == version and workspace.views == {}


def test_log_touch_modal_records_the_touch_and_the_hubspot_engagement(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    press(http, slack, clock, button(LOG_TOUCH, ALEX, lead["id"], 0, lead["channel"], lead["ts"]))
    [view] = workspace.views.values()
    assert view["callback_id"] == LOG_TOUCH
    values = {
        "kind": selected("call"),
        "outcome": {"selected_option": {"value": "connect"}},
        "note": {"type": "plain_text_input", "value": "Talked <!here> about pricing"},
    }
    response = press(http, slack, clock, submission(view, ALEX, values))
    assert response.status_code == 200 and response.data == b""
    touched = get_lead(engine, lead["id"])
    assert [(t.kind, t.connect) for t in touched.touches] == [("call", True)]
    with engine.connect() as conn:
        hubspot = conn.execute(select(outbox).where(outbox.c.channel == "hubspot")).one()
    assert json.loads(hubspot.payload)["kind"] == "call"
    assert ephemerals_for(workspace, ALEX)[-1].startswith("Logged a call")
    [root] = workspace.messages(lead["channel"])
    assert "Handled: call (connect)" in str(root["blocks"][0])
    again = press(http, slack, clock, submission(view, ALEX, values))  # the same modal twice
    assert again.get_json()["response_action"] == "errors"
    assert len(get_lead(engine, lead["id"]).touches) == 1


def test_snooze_offers_only_choices_within_the_cap(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    press(http, slack, clock, button(SNOOZE, ALEX, lead["id"], 0, lead["channel"], lead["ts"]))
    [view] = workspace.views.values()
    options = view["blocks"][1]["element"]["options"]
    assert max(int(o["value"]) for o in options) <= 24 * 3600
    press(http, slack, clock, submission(view, ALEX, {"until": selected("3600")}))
    snoozed = get_lead(engine, lead["id"]).state.snooze
    assert snoozed is not None and snoozed.until == clock.now() + timedelta(hours=1)


def test_manager_reassigns_to_a_teammate_and_both_reps_hear_of_it(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
    deliverer: SlackDeliverer,
) -> None:
    press(http, slack, clock, button(REASSIGN, SAM, lead["id"], 0, lead["channel"], lead["ts"]))
    [view] = workspace.views.values()
    names = [o["text"]["text"] for o in view["blocks"][1]["element"]["options"]]
    assert names == ["Next rep in the rotation", "Casey Rep", "Nobody"]
    press(http, slack, clock, submission(view, SAM, {"owner": selected("1003")}))
    assert get_lead(engine, lead["id"]).owner_id == "1003"
    assert deliver_due(engine, deliverer, now=clock.now()) == (2, 0)
    old = workspace.messages(workspace.dm_of(ALEX))[-1]
    new = workspace.messages(workspace.dm_of(CASEY))[-1]
    assert "was reassigned from Alex Rep to Casey Rep" in old["text"]
    assert "is now yours" in new["text"] and new["blocks"][-1]["type"] == "actions"
    assert "Reassigned to Casey Rep" in str(workspace.messages(workspace.dm_of(ALEX))[0]["blocks"])


def test_admin_may_act_on_any_lead(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    press(http, slack, clock, button(ACK, ADMIN, lead["id"], 0, "C0SALES001", "1.1"))
    ack = get_lead(engine, lead["id"]).state.ack
    assert ack is not None and ack.by == ADMIN


def test_the_answer_does_not_wait_for_slack(
    http: FlaskClient,
    slack: Interactions,
    clock: FrozenClock,
    engine: Engine,
    lead: dict,
    workspace: FakeSlack,
) -> None:
    workspace.pause()  # every Slack call hangs until resume()
    try:
        data, headers = signed(
            button(ACK, ALEX, lead["id"], 0, lead["channel"], lead["ts"]), clock.now()
        )
        response = http.post("/slack/actions", data=data, headers=headers)
        assert response.status_code == 200 and response.data == b""
        assert workspace.ephemerals == []  # the confirmation is still on its way
    finally:
        workspace.resume()
    slack.runner.wait_idle()
    assert ephemerals_for(workspace, ALEX)[0].startswith("Got it")


@pytest.mark.parametrize(
    "bad",
    [
        [1],
        {"type": "block_actions", "user": {"id": "U1"}, "actions": "x"},
        {"type": "view_submission", "view": {"callback_id": LOG_TOUCH}},
        {
            "type": "view_submission",
            "user": {"id": "U1"},
            "view": {"callback_id": LOG_TOUCH, "private_metadata": "nope", "state": {}},
        },
    ],
)
def test_signed_but_malformed_payloads_get_400_not_500(
    http: FlaskClient, slack: Interactions, clock: FrozenClock, bad: Any
) -> None:
    body, headers = signed(bad, clock.now())
    response = http.post("/slack/actions", data=body, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "error" in response.get_json()
