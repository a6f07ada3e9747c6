"""Acceptance of the weekly digests (issue 12, items 1-2), on SQLite and PostgreSQL.

The seeded history (tests/outcomes/history.py) is played through the engine; then, on a frozen
clock, the worker's digest job and the Slack deliverer run against the fake Slack:
- the scorecard and the marketing digest go out once, at the configured local time, and carry
  the numbers `sla-bot report` prints for the same week;
- a digest scheduled on a holiday (Veterans Day) goes out the next open day;
- a second worker in the same minute, and a retry after an ambiguous failure, send nothing twice;
- the scorecard's chart is a valid PNG the fake received through files_upload_v2's calls.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.slack.fake import FakeSlack
from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from sla_bot.config import Settings
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import outbox
from sla_bot.digests.plan import plan_due
from sla_bot.outbox import deliver_due
from sla_bot.rules.ruleset import RuleSet
from tests.digests.conftest import MANAGER, MARKETING, MIDWEEK, Waits, deliverer_for
from tests.outcomes.history import ny, play

WEEK = ["--since", "2026-11-02", "--until", "2026-11-09"]


def _report(
    capsys: pytest.CaptureFixture[str], *args: str, window: list[str] = WEEK
) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["report", *args, *window, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(outbox)
            .where(outbox.c.kind.in_(["scorecard", "marketing"]))
            .order_by(outbox.c.id)
        ).all()


def _same(numbers: dict[str, Any], group: dict[str, Any]) -> None:
    """A digest's numbers equal the report's JSON for the same group, value for value."""
    assert numbers["label"] == group["label"]
    assert numbers["values"] == {k: group[k] for k in numbers["values"]}, group["label"]


def test_digests_go_out_once_at_local_time_with_the_reports_numbers(
    engine: Engine,
    db_url: str,
    clock: FrozenClock,
    rules: RuleSet,
    digest_settings: Settings,
    slack: FakeSlack,
    slack_client: WebClient,
    slack_waits: Waits,
    capsys: pytest.CaptureFixture[str],
) -> None:
    play(engine)
    deliverer = deliverer_for(slack_client, engine, clock, slack_waits, rules)
    second = make_engine(db_url)  # another worker replica on the same database
    try:
        sent: list[str] = []
        for when in (
            "2026-11-09 08:29:59",  # not yet
            "2026-11-09 08:30",  # the scorecard
            "2026-11-09 08:30:30",  # same minute, next tick
            "2026-11-09 09:00",  # the marketing digest
            "2026-11-11 08:30",  # Veterans Day: the midweek scorecard waits
            "2026-11-12 08:30",  # ... until the next open day
            "2026-11-12 09:00",
            "2026-11-16 08:29",
        ):
            clock.set(ny(when))
            for eng in (engine, second):  # both workers tick in the same minute
                for planned in plan_due(eng, rules, digest_settings, now=clock.now()):
                    if planned.enqueued:
                        sent.append(f"{when} {planned.key}")
            deliver_due(engine, deliverer, now=clock.now())
            deliver_due(second, deliverer, now=clock.now())
    finally:
        second.dispose()
    assert sent == [
        "2026-11-09 08:30 scorecard:all:sdr:2026-W45",
        "2026-11-09 09:00 marketing:all:marketing-weekly:2026-W45",
        "2026-11-12 08:30 scorecard:62515:sdr:2026-W45",
    ]
    rows = _rows(engine)
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] * 3

    # Slack got each once: the manager's DM (and its chart), #marketing, the midweek channel.
    dm = slack.dm_of(MANAGER)
    assert dm is not None
    top = [m for m in slack.messages(dm) if "thread_ts" not in m]
    assert len(top) == 1 and "Scorecard sdr, week 2026-W45" in top[0]["text"]
    assert len(slack.messages(MARKETING)) == 1
    midweek = slack.messages(MIDWEEK)
    assert len([m for m in midweek if "thread_ts" not in m]) == 1
    assert "holiday: Veterans Day" in json.dumps(midweek[0]["blocks"])

    # The numbers are the report's for the same week.
    card = json.loads(rows[0].payload)
    report = _report(capsys, "--by", "rep", "--team", "sdr")
    _same(card["total"], report["total"])
    assert len(card["reps"]) == len(report["groups"])
    for rep, group in zip(card["reps"], report["groups"], strict=True):
        _same(rep, group)
    last_week = ["--since", "2026-10-26", "--until", "2026-11-02"]
    _same(
        card["previous"], _report(capsys, "--by", "rep", "--team", "sdr", window=last_week)["total"]
    )
    marketing = json.loads(rows[1].payload)
    by_source = _report(capsys, "--by", "source")
    for mine, group in zip(
        marketing["sources"], [*by_source["groups"], by_source["total"]], strict=True
    ):
        _same(mine, group)
    by_campaign = _report(capsys, "--by", "campaign")
    for mine, group in zip(
        marketing["campaigns"], [*by_campaign["groups"], by_campaign["total"]], strict=True
    ):
        _same(mine, group)
        assert "cost_per_qualified" in mine["values"] and "cost_per_lead" in mine["values"]
    assert [p["name"] for p in marketing["recycled"]["items"]] == ["Lead5 Example", "Lead6 Example"]
    assert {p["reason"] for p in marketing["recycled"]["items"]} == {"No connect after the cadence"}

    # ... and the message shows them as the report's table does.
    text = json.dumps(top[0]["blocks"])
    assert f"Within target*: {card['total']['shown']['within_target_pct']}" in text
    for rep in card["reps"]:
        assert f"*{rep['label']}*: met {rep['shown']['met']}" in text
    assert "Lead6 Example (Blair Rep)" in text
    assert "https://sla.example.com/reports?" in text and "team=sdr" in text

    # The chart: a valid PNG, uploaded through files_upload_v2's three calls into the thread.
    assert len(slack.calls_to("files.getUploadURLExternal")) == 2
    assert len(slack.calls_to("upload")) == 2
    assert len(slack.calls_to("files.completeUploadExternal")) == 2
    files = slack.uploaded()
    assert [f["channel"] for f in files] == [dm, MIDWEEK]
    for f in files:
        assert f["mimetype"] == "image/png"
        image = Image.open(io.BytesIO(f["data"]))
        image.verify()
        assert image.format == "PNG"
    shared = [m for m in slack.messages(dm) if m.get("files")]
    assert [m["thread_ts"] for m in shared] == [top[0]["ts"]]


def test_the_report_link_is_signed_and_opens_the_same_report(
    engine: Engine,
    clock: FrozenClock,
    rules: RuleSet,
    digest_settings: Settings,
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from sla_bot.reports import access

    clock.set(ny("2026-11-09 08:30"))
    [planned] = plan_due(engine, rules, digest_settings, now=clock.now())
    link = json.loads(_rows(engine)[0].payload)["link"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["team"] == "sdr" and query["since"] == "2026-11-02"
    grant = access.from_settings(digest_settings).check(query["access"], now=clock.now())
    assert isinstance(grant, access.Grant) and grant.portal is None
