"""Digest delivery under faults, and what the rules and the fake Slack refuse.

A retry after an ambiguous failure (Slack did it, the answer was lost) finds the message or the
chart already there and sends nothing twice; a manager who cannot be found is skipped for good
while the others still get theirs; CRM text is escaped for mrkdwn.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.slack.digest_messages import plain_text, render
from integrations.slack.fake import FakeSlack
from sla_bot.clock import FrozenClock
from sla_bot.config import Settings
from sla_bot.db.schema import outbox
from sla_bot.digests import schedule
from sla_bot.digests.plan import plan_due
from sla_bot.outbox import deliver_due
from sla_bot.rules.loader import Source, load_sources
from sla_bot.rules.ruleset import RuleSet
from tests.digests.conftest import MANAGER, RULES, Waits, deliverer_for
from tests.outcomes.history import ny

pytestmark = pytest.mark.usefixtures("slack")
MONDAY = "2026-11-09 08:30"


def _row(engine: Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(outbox).where(outbox.c.kind == "scorecard")).first()


def _plan(engine: Engine, rules: RuleSet, settings: Settings, clock: FrozenClock) -> None:
    clock.set(ny(MONDAY))
    assert [p.enqueued for p in plan_due(engine, rules, settings, now=clock.now())] == [True]


def _retry(engine: Engine, deliverer: Any, clock: FrozenClock) -> None:
    clock.advance(timedelta(minutes=20))  # past any backoff
    deliver_due(engine, deliverer, now=clock.now())


def test_an_ambiguous_post_is_not_posted_again(
    engine: Engine,
    clock: FrozenClock,
    rules: RuleSet,
    digest_settings: Settings,
    slack: FakeSlack,
    slack_client: WebClient,
    slack_waits: Waits,
) -> None:
    _plan(engine, rules, digest_settings, clock)
    deliverer = deliverer_for(slack_client, engine, clock, slack_waits, rules)
    slack.fail_next(1, 500, method="chat.postMessage", apply=True)  # posted, answer lost
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)
    _retry(engine, deliverer, clock)
    dm = slack.dm_of(MANAGER)
    assert len([m for m in slack.messages(dm) if "thread_ts" not in m]) == 1
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert _row(engine).status == "sent" and len(slack.uploaded()) == 1


def test_an_ambiguous_upload_is_not_uploaded_again(
    engine: Engine,
    clock: FrozenClock,
    rules: RuleSet,
    digest_settings: Settings,
    slack: FakeSlack,
    slack_client: WebClient,
    slack_waits: Waits,
) -> None:
    _plan(engine, rules, digest_settings, clock)
    deliverer = deliverer_for(slack_client, engine, clock, slack_waits, rules)
    slack.fail_next(1, 500, method="files.completeUploadExternal", apply=True)
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)
    assert json.loads(_row(engine).result)["to"]  # the message's ts was kept
    _retry(engine, deliverer, clock)
    assert len(slack.uploaded()) == 1
    assert len(slack.calls_to("files.completeUploadExternal")) == 1
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert _row(engine).status == "sent"


def test_a_lost_upload_is_uploaded_once_more(
    engine: Engine,
    clock: FrozenClock,
    rules: RuleSet,
    digest_settings: Settings,
    slack: FakeSlack,
    slack_client: WebClient,
    slack_waits: Waits,
) -> None:
    _plan(engine, rules, digest_settings, clock)
    deliverer = deliverer_for(slack_client, engine, clock, slack_waits, rules)
    slack.fail_next(1, 503, method="upload")  # the bytes never arrived
    deliver_due(engine, deliverer, now=clock.now())
    assert slack.uploaded() == []
    _retry(engine, deliverer, clock)
    assert len(slack.uploaded()) == 1 and _row(engine).status == "sent"


def test_an_unmapped_manager_is_skipped_and_reported(
    engine: Engine,
    clock: FrozenClock,
    digest_settings: Settings,
    slack: FakeSlack,
    slack_client: WebClient,
    slack_waits: Waits,
) -> None:
    text = (
        (RULES / "rules.yaml")
        .read_text()
        .replace(
            "      - {name: Sam Manager, email: sam.manager@example.com}",
            "      - {name: Sam Manager, email: sam.manager@example.com}\n"
            "      - {name: Gone Manager, email: gone@example.com}",
        )
    )
    digests = (RULES / "digests.yaml").read_text()
    loaded = load_sources([Source("rules.yaml", text), Source("digests.yaml", digests)])
    assert loaded.ruleset is not None, loaded.errors
    _plan(engine, loaded.ruleset, digest_settings, clock)
    deliverer = deliverer_for(slack_client, engine, clock, slack_waits, loaded.ruleset)
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    result = json.loads(_row(engine).result)["to"]
    assert "not mapped to a Slack user" in result["gone@example.com"]["skipped"]
    assert result["sam.manager@example.com"]["ts"]
    assert any("gone@example.com" in note for note in deliverer.ops.notes)


def test_on_holiday_skip_sends_nothing_that_week(rules: RuleSet) -> None:
    cal = rules.calendar("ny-holidays", year=2026)
    every = rules.digests["sdr-midweek"].every
    for day in ("2026-11-11 08:30", "2026-11-12 08:30", "2026-11-13 08:30"):
        assert schedule.due(every, cal, "skip", ny(day)) is None
    moved = schedule.due(every, cal, "next_open_day", ny("2026-11-12 08:30"))
    assert moved is not None and moved.moved == "holiday: Veterans Day"
    assert schedule.due(every, cal, "next_open_day", ny("2026-11-12 20:31")) is None  # too late
    # The week after: a normal Wednesday, covering the week before it.
    later = schedule.due(every, cal, "skip", ny("2026-11-18 08:30"))
    assert later is not None and later.period == "2026-W46"


def test_crm_text_is_escaped_for_mrkdwn() -> None:
    payload = {
        "kind": "marketing",
        "period": "2026-W45",
        "sources": [
            {"label": "<!channel>", "key": "x", "values": {}, "shown": {"leads": "1"}},
        ],
        "campaigns": [],
        "costs": False,
        "recycled": {
            "items": [
                {
                    "name": "<@U123> & co",
                    "rep": "R <b>",
                    "source": "s",
                    "campaign": "c",
                    "reason": "<https://evil|click>",
                }
            ],
            "more": 0,
        },
        "premature": {"items": [], "more": 0},
        "link": "https://sla.example.com/reports?a=1&b=2",
    }
    text, blocks = render(payload)
    body = json.dumps(blocks)
    assert "<!channel>" not in body and "&lt;!channel&gt;" in body
    assert "&lt;@U123&gt; &amp; co" in body and "&lt;https://evil|click&gt;" in body
    assert "<https://sla.example.com/reports?a=1&amp;b=2|Open the full report>" in body
    assert "<!channel>" in plain_text(payload)  # the log line is plain text


RULE_ERRORS = """
digests:
  weekly:
    kind: scorecard
    teams: [sdr, nobody]
    every: mondy 08:30
  mk:
    kind: marketing
    every: monday 09:00
  twice:
    kind: scorecard
    every: friday 16:00
    to: team_channel
"""


def test_rules_check_reports_digest_mistakes_at_file_line() -> None:
    text = (RULES / "rules.yaml").read_text()
    loaded = load_sources([Source("rules.yaml", text), Source("d.yaml", RULE_ERRORS)])
    errors = [str(e) for e in loaded.errors]
    assert errors == [
        'd.yaml:6:12: bad schedule "mondy 08:30": expected a weekday and a local time, e.g. '
        '"monday 08:30"',
        'd.yaml:8:5: a marketing digest needs a channel, e.g. "#marketing"',
        "d.yaml:13:9: team 'sdr' has no channel",
    ]


def test_the_fake_refuses_what_slack_refuses(slack: FakeSlack, slack_client: WebClient) -> None:
    url = slack_client.files_getUploadURLExternal(filename="a.png", length=3)
    with pytest.raises(SlackApiError) as never_uploaded:
        slack_client.files_completeUploadExternal(files=[{"id": url["file_id"]}])
    assert never_uploaded.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError) as by_name:
        slack_client.files_upload_v2(channel="#marketing", content=b"abc", filename="a.txt")
    assert by_name.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as bad:
        slack_client.files_getUploadURLExternal(filename="a.png", length=0)
    assert bad.value.response["error"] == "invalid_arguments"
