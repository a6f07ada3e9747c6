"""A SlackDeliverer against the fake Slack, with one team in the rules."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from integrations.slack.deliverer import SlackDeliverer
from integrations.slack.fake import FakeSlack
from integrations.slack.ops import OpsReporter
from integrations.slack.pacing import ChannelPacer
from sla_bot.clock import FrozenClock
from tests.fixtures_slack import Waits
from tests.slack.helpers import RULES

OPS = "C0OPS00001"


@pytest.fixture
def workspace(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.add_user("U0ALEX0001", "alex@example.com", "Alex Rep")
    fake_slack.add_user("U0CASEY001", "casey@example.com", "Casey Rep")
    fake_slack.add_user("U0MANAGER1", "sam@example.com", "Sam Manager")
    fake_slack.add_user("U0ADMIN001", "admin@example.com", "Ada Admin")
    fake_slack.add_user("U0OTHER001", "other@example.com", "Olly Other")
    fake_slack.add_channel("C0SALES001", "sales-escalations")
    fake_slack.add_channel(OPS, "sla-bot-ops")
    return fake_slack


@pytest.fixture
def deliverer(
    workspace: FakeSlack,
    slack_client: WebClient,
    engine: Engine,
    clock: FrozenClock,
    slack_waits: Waits,
) -> SlackDeliverer:
    return SlackDeliverer(
        slack_client,
        engine,
        clock=clock,
        rules=RULES,
        pacer=ChannelPacer(monotonic=slack_waits.monotonic, sleep=slack_waits.sleep),
        ops=OpsReporter(slack_client, OPS, clock=clock),
    )
