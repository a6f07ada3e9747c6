"""The engine jobs as `sla-bot worker` wires them (with a token: fetch through the SDK)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import FrozenClock
from sla_bot.rules import RulesHolder
from sla_bot.services import Services
from sla_bot.worker import jobs
from tests.conftest import T0, make_settings
from tests.engine.harness import RULES, Harness, ev
from tests.engine.test_events import PROPS
from tests.fixtures_hubspot import HUBSPOT_TEST_TOKEN


def test_worker_jobs_take_a_webhook_to_a_logged_notification(
    engine: Engine,
    db_url: str,
    clock: FrozenClock,
    fake_hubspot: FakeHubSpot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="sla_bot.notify")
    fake_hubspot.add_contact("31", {**PROPS, "firstname": "Kim", "lastmodifieddate": T0})
    settings = make_settings(
        DATABASE_URL=db_url,
        HUBSPOT_ACCESS_TOKEN=HUBSPOT_TEST_TOKEN,
        HUBSPOT_API_BASE_URL=fake_hubspot.base_url,
        SLA_BOT_RULES_DIR=str(RULES),
    )
    holder = RulesHolder(RULES)
    holder.reload_if_changed()
    services = Services(settings=settings, engine=engine, clock=clock, rules=holder)
    planned = dict((name, func) for name, func, _ in jobs(services))
    assert {"apply-events", "fetch-contacts", "sla-sweep", "deliver-slack"} <= set(planned)
    h = Harness(engine, clock)
    h.webhook(ev("contact.creation", 31, T0))
    clock.set(T0 + timedelta(minutes=4))
    order = ("split-webhook-batches", "apply-events", "fetch-contacts", "sla-sweep")
    for _ in range(2):
        for name in (*order, "deliver-slack"):
            planned[name]()
    (row,) = h.rows("slack")
    assert row["status"] == "sent" and row["result"] == '{"logged": true}'
    out = caplog.text
    assert "Slack message to Kim" not in out  # Kim is the lead; the rep is told about Kim
    assert "Slack message to " in out and "(owner)" in out and "Kim" in out
