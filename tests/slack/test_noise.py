"""Noise control through the real worker jobs and the fake Slack: escalations to one manager
are batched into one message edited in place, capped per hour, and still exactly once."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.slack.batches import KIND, post_at
from integrations.slack.client import make_client
from integrations.slack.deliverer import SlackDeliverer
from integrations.slack.fake import FakeSlack
from integrations.slack.ops import OpsReporter
from integrations.slack.pacing import ChannelPacer
from sla_bot.clock import FrozenClock
from sla_bot.db.schema import outbox, slack_batch_items
from sla_bot.engine.batched import batch_lines
from sla_bot.intake import store_batch
from sla_bot.rules import RulesHolder
from sla_bot.services import Services
from sla_bot.worker import split_once
from sla_bot.worker_jobs import engine_jobs
from tests.conftest import T0, make_settings
from tests.engine.harness import RULES
from tests.engine.test_events import _sync
from tests.fixtures_slack import SLACK_TEST_TOKEN, Waits

M = timedelta(minutes=1)
MANAGER = "U0MANAGER1"
LEADS = 30


def rules_dir(tmp_path: Path, noise: dict[str, Any] | None) -> Path:
    """The shipped rules, the team's manager mapped to Slack, and `noise` on the team."""
    out = tmp_path / "rules"
    out.mkdir()
    doc = yaml.safe_load((RULES / "default.yaml").read_text())
    team = doc["teams"]["inbound_sdr"]
    team["managers"][0]["slack"] = MANAGER
    team["channel"] = "C0SALES001"
    if noise is not None:
        team["noise"] = noise
    (out / "default.yaml").write_text(yaml.safe_dump(doc))
    shutil.copy(RULES / "schema.json", out / "schema.json")
    return out


class World:
    """The worker's own jobs (split, apply, sweep, deliver) on the test's clock."""

    def __init__(
        self, db_url: str, engine: Engine, clock: FrozenClock, fake: FakeSlack, rules: Path
    ) -> None:
        for uid, email in (
            (MANAGER, "sam.manager@example.com"),
            ("U0ALEX0001", "alex.rep@example.com"),
            ("U0BLAIR001", "blair.rep@example.com"),
            ("U0CASEY001", "casey.rep@example.com"),
        ):
            fake.add_user(uid, email)
        fake.add_channel("C0SALES001", "sales-escalations")
        self.engine, self.clock, self.fake = engine, clock, fake
        holder = RulesHolder(rules)
        holder.reload_if_changed()
        settings = make_settings(DATABASE_URL=db_url, SLA_BOT_RULES_DIR=str(rules))
        self.services = Services(settings=settings, engine=engine, clock=clock, rules=holder)
        waits = Waits()
        client = make_client(SLACK_TEST_TOKEN, fake.base_url, timeout=2.0, sleep=waits.sleep)
        self.deliverer = SlackDeliverer(
            client,
            engine,
            clock=clock,
            rules=holder,
            pacer=ChannelPacer(monotonic=waits.monotonic, sleep=waits.sleep),
            ops=OpsReporter(client, None, clock=clock),
        )
        self.jobs: dict[str, Callable[[], None]] = {
            name: fn for name, fn, _ in engine_jobs(self.services, self.deliverer)
        }

    def lead(self, object_id: int, at: datetime, owner: str = "1001") -> None:
        props = {
            "createdate": at.isoformat(),
            "hubspot_owner_id": owner,
            "lead_source": "demo_request",
            "firstname": f"Lead{object_id}",
        }
        store_batch(
            self.engine,
            body=json.dumps([_sync(object_id, props, at)]).encode(),
            source="webhooks_api",
            signature_version="none",
            received_at=at,
        )

    def tick(self, at: datetime, deliver: bool = True) -> None:
        self.clock.set(at)
        split_once(self.services)
        self.jobs["apply-events"]()
        self.jobs["sla-sweep"]()
        if deliver:
            self.jobs["deliver-slack"]()

    def manager_messages(self) -> list[dict[str, Any]]:
        dm = self.fake.dm_of(MANAGER)
        return self.fake.messages(dm) if dm else []

    def manager_posts(self) -> int:
        dm = self.fake.dm_of(MANAGER)
        return sum(c.args.get("channel") == dm for c in self.fake.calls_to("chat.postMessage"))

    def rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(select(outbox).order_by(outbox.c.id)).all()


def breach_thirty(world: World, until: datetime = T0 + 22 * M) -> None:
    """30 leads created 10 s apart (their manager step falls within 5 minutes), then ticks
    every 30 s until just before the ladder's reassignment step."""
    for n in range(LEADS):
        world.lead(5000 + n, T0 + n * timedelta(seconds=10))
    at = T0
    while at <= until:
        world.tick(at)
        at += timedelta(seconds=30)


def manager_leads(message: dict[str, Any]) -> set[str]:
    """The lead names a message lists (sections and the '…and N more' line)."""
    text = json.dumps(message["blocks"])
    return {f"Lead{5000 + n}" for n in range(LEADS) if f"Lead{5000 + n}" in text}


def test_thirty_breaches_under_one_manager_make_one_message_updated_in_place(
    db_url: str, engine: Engine, clock: FrozenClock, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    world = World(db_url, engine, clock, fake_slack, rules_dir(tmp_path, {"batch_window": "10m"}))
    breach_thirty(world)
    [message] = world.manager_messages()
    assert world.manager_posts() == 1
    assert len(manager_leads(message)) == LEADS  # every lead listed, none lost
    assert "30 leads need attention" in json.dumps(message["blocks"])
    assert message.get("edited")  # updated in place as leads arrived
    assert len(fake_slack.calls_to("chat.update")) >= 1
    sent = [r for r in world.rows() if r.kind == "ladder" and r.recipient.startswith("manager")]
    assert len(sent) == LEADS and {r.status for r in sent} == {"sent"}
    [batch_row] = [r for r in world.rows() if r.kind == KIND]
    assert batch_row.status == "sent" and batch_row.idempotency_key == "batch:1"
    with engine.connect() as conn:  # what `lead show` prints
        [line] = batch_lines(conn, sent[4].lead_id)
    assert line["text"].endswith("sent in batch #1 with 29 other leads")


def test_without_batching_thirty_breaches_make_thirty_messages(
    db_url: str, engine: Engine, clock: FrozenClock, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    world = World(db_url, engine, clock, fake_slack, rules_dir(tmp_path, None))
    breach_thirty(world)
    assert world.manager_posts() == LEADS
    assert len(world.manager_messages()) == LEADS
    assert not [r for r in world.rows() if r.kind == KIND]


def test_hourly_cap_folds_later_leads_into_the_next_batch(
    db_url: str, engine: Engine, clock: FrozenClock, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    noise = {"batch_window": "0m", "max_per_hour": 2}
    world = World(db_url, engine, clock, fake_slack, rules_dir(tmp_path, noise))
    for n in range(5):  # manager steps 2 minutes apart: 5 separate messages without the cap
        world.lead(5000 + n, T0 + n * 2 * M)
    at = T0
    while at <= T0 + 24 * M:
        world.tick(at)
        at += timedelta(seconds=30)
    assert world.manager_posts() == 2  # the cap: leads 3 to 5 wait for the next hour
    listed = set().union(*(manager_leads(m) for m in world.manager_messages()))
    assert listed == {"Lead5000", "Lead5001"}
    with engine.connect() as conn:
        folded = conn.execute(
            select(slack_batch_items.c.lead_id).where(slack_batch_items.c.folded == 1)
        ).all()
    assert len(folded) == 3  # joined a batch due in an hour: never dropped
    world.tick(T0 + 15 * M + 60 * M)  # an hour after the first post
    [_, _, third] = world.manager_messages()
    assert manager_leads(third) == {"Lead5002", "Lead5003", "Lead5004"}
    assert "held back" in json.dumps(third["blocks"])


def test_a_crash_mid_post_neither_sends_the_batch_twice_nor_loses_a_lead(
    db_url: str, engine: Engine, clock: FrozenClock, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    world = World(db_url, engine, clock, fake_slack, rules_dir(tmp_path, {"batch_window": "10m"}))
    for n in range(LEADS):
        world.lead(5000 + n, T0 + n * timedelta(seconds=10))
    at = T0
    while at < T0 + 15 * M:
        world.tick(at)
        at += timedelta(seconds=30)
    # The batch's post reaches Slack but the answer is lost (a 500 after posting) and so is the
    # search for it: like a worker that died after posting, the next attempt knows only that a
    # post was under way. The edits that follow fail too.
    fake_slack.fail_next(1, 500, method="chat.postMessage", apply=True)
    fake_slack.fail_next(1, 200, method="conversations.history", error="fatal_error")
    fake_slack.fail_next(3, 503, method="chat.update")
    while at <= T0 + 22 * M:
        world.tick(at)
        at += M
    world.tick(at + 3 * M)  # retries after backoff and expired leases
    world.tick(at + 6 * M)  # (before the ladder's channel step)
    dm = fake_slack.dm_of(MANAGER)
    [message] = world.manager_messages()
    assert sum(c.args.get("channel") == dm for c in fake_slack.calls_to("chat.postMessage")) <= 2
    assert len(manager_leads(message)) == LEADS
    assert {r.status for r in world.rows() if r.kind in ("ladder", KIND)} == {"sent"}
    [batch_row] = [r for r in world.rows() if r.kind == KIND]
    assert batch_row.attempts >= 2  # the lost answer was retried, and found by its key


@pytest.mark.parametrize(
    ("recent", "cap", "expected"),
    [([], 2, 0), ([-50], 2, 0), ([-50, -10], 2, 10), ([-50, -10], None, 0), ([-59, -58], 1, 2)],
)
def test_post_at_waits_for_the_oldest_message_of_the_hour(
    recent: list[int], cap: int | None, expected: int
) -> None:
    times = [T0 + m * M for m in recent]
    assert post_at(times, T0, cap) == T0 + expected * M
