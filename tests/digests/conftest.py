"""Fixtures of the digest tests: the history's rules with digests, settings, a fake Slack."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from integrations.slack.deliverer import SlackDeliverer
from integrations.slack.fake import FakeSlack
from integrations.slack.ops import OpsReporter
from integrations.slack.pacing import ChannelPacer
from sla_bot.clock import FrozenClock
from sla_bot.config import Settings
from sla_bot.rules.loader import load_rules
from sla_bot.rules.ruleset import RuleSet
from tests.conftest import make_settings
from tests.fixtures_slack import Waits

__all__ = ["MANAGER", "MARKETING", "MIDWEEK", "RULES", "Waits", "deliverer_for"]

RULES = Path(__file__).resolve().parent / "rules"
COSTS = (
    "campaign,from,to,spend\nwebinar,2026-11-01,2026-11-30,3000\nsearch,2026-11-02,2026-11-08,700\n"
)
MANAGER, MARKETING, MIDWEEK = "U0SAMMGR01", "C0MARKET01", "C0MIDWEEK1"


@pytest.fixture
def rules() -> RuleSet:
    return load_rules(RULES)


@pytest.fixture
def digest_settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    costs = tmp_path / "campaign-costs.csv"
    costs.write_text(COSTS)
    env = {
        "DATABASE_URL": db_url,
        "SLA_BOT_RULES_DIR": str(RULES),
        "SLA_BOT_SECRET_KEY": Fernet.generate_key().decode(),
        "SLA_BOT_PUBLIC_URL": "https://sla.example.com/hubspot/webhook",
        "SLA_BOT_CAMPAIGN_COSTS": str(costs),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return make_settings(**env)


@pytest.fixture
def slack(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.add_user(MANAGER, "sam.manager@example.com", "Sam Manager")
    fake_slack.add_channel(MARKETING, "marketing")
    fake_slack.add_channel(MIDWEEK, "sdr-midweek")
    return fake_slack


def deliverer_for(
    client: WebClient, engine: Engine, clock: FrozenClock, waits: Waits, rules: RuleSet
) -> SlackDeliverer:
    return SlackDeliverer(
        client,
        engine,
        clock=clock,
        rules=rules,
        pacer=ChannelPacer(monotonic=waits.monotonic, sleep=waits.sleep),
        ops=OpsReporter(None, None, clock=clock),
    )
