"""Without a Slack token, each message is one log line, in words, in the recipient's time."""

from __future__ import annotations

import json
import logging

import pytest

from sla_bot.log_deliverer import LogDeliverer, render
from sla_bot.logs import JsonFormatter
from sla_bot.outbox import OutboxItem

PAYLOAD = {
    "kind": "first_touch.warning",
    "step_key": "first_touch.warning",
    "text": "First-touch deadline for Ada Lovelace is close",
    "deadline": "2026-11-20T15:05:00+00:00",
    "timezone": "America/New_York",
    "recipient": {"role": "owner", "name": "Alex Rep", "slack": None, "owner_id": "1001"},
    "lead": {"hubspot_url": "https://app.hubspot.com/contacts/62515/record/0-1/901"},
}


def _item(payload: dict) -> OutboxItem:
    return OutboxItem(1, 1, 62515, 901, "k", "slack", payload["kind"], payload, 1, None)


def test_a_message_reads_as_words_with_the_deadline_in_the_recipients_zone() -> None:
    line = render(PAYLOAD)
    assert line.startswith("Slack message to Alex Rep (owner): First-touch deadline for Ada")
    assert "Deadline Fri Nov 20, 10:05 EST" in line
    assert "first_touch.warning" not in line and "+00:00" not in line
    channel = {**PAYLOAD, "recipient": {"role": "channel", "slack": "#sales", "name": "#sales"}}
    assert render(channel).startswith("Slack message to #sales: ")


def test_each_message_is_logged_once_and_not_printed(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO, logger="sla_bot.notify"):
        LogDeliverer().deliver(_item(PAYLOAD))
    assert capsys.readouterr().out == ""
    [record] = caplog.records
    entry = json.loads(JsonFormatter().format(record))  # SLA_BOT_LOG_FORMAT=json covers it
    assert entry["msg"] == render(PAYLOAD)
