"""Pytest fixtures for Slack: a fake Slack Web API server and real WebClients wired to it.

* ``fake_slack`` - a :class:`~integrations.slack.fake.FakeSlack` (one server per session, reset
  before every test); its message timestamps follow the test's frozen ``clock``.
* ``slack_waits`` - the sleep/monotonic pair behind the client's retries and the pacer: sleeps
  are recorded in ``slack_waits.sleeps`` and advance its time, never the wall clock.
* ``slack_client`` - a ``slack_sdk.WebClient`` from ``integrations.slack.client.make_client``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from integrations.slack.client import make_client
from integrations.slack.fake import FakeSlack
from sla_bot.clock import FrozenClock, ManualClock

SLACK_TEST_TOKEN = "xoxb-fake"


Waits = ManualClock  # monotonic time + sleep that never blocks: sleeping advances time


@pytest.fixture(scope="session")
def _fake_slack_server() -> Iterator[FakeSlack]:
    fake = FakeSlack(token=SLACK_TEST_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_slack(_fake_slack_server: FakeSlack, clock: FrozenClock) -> FakeSlack:
    _fake_slack_server.token = SLACK_TEST_TOKEN
    _fake_slack_server.reset(now=lambda: clock.now().timestamp())
    return _fake_slack_server


@pytest.fixture
def slack_waits() -> Waits:
    return Waits()


@pytest.fixture
def slack_client(fake_slack: FakeSlack, slack_waits: Waits) -> WebClient:
    return make_client(SLACK_TEST_TOKEN, fake_slack.base_url, timeout=2.0, sleep=slack_waits.sleep)
