"""Acceptance: with 30% of Slack calls answered 429 or 5xx, 500 due messages go out exactly once.

Some 5xx answers come *after* Slack posted the message (the ambiguous case), so only the
deliverer's search-before-repost keeps them single. Pacing and retries wait on a fake clock.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from integrations.slack.deliverer import SlackDeliverer, correlation
from integrations.slack.fake import FakeSlack
from integrations.slack.ops import OpsReporter
from integrations.slack.pacing import ChannelPacer
from sla_bot.clock import FrozenClock
from sla_bot.outbox import deliver_parallel
from tests.fixtures_slack import Waits
from tests.slack.helpers import add_lead, queue, rows

REPS = 50


def test_storm_of_429_and_5xx_delivers_each_message_exactly_once(
    fake_slack: FakeSlack,
    slack_client: WebClient,
    engine: Engine,
    clock: FrozenClock,
    slack_waits: Waits,
) -> None:
    for i in range(REPS):
        fake_slack.add_user(f"U0REP{i:05d}", f"rep{i}@example.com")
    fake_slack.add_channel("C0SALES001", "sales-escalations")
    keys = []
    for n in range(250):  # 250 leads x (nudge + warning): threads and root edits under fire
        lead = add_lead(engine, clock.now(), object_id=10_000 + n, owner=str(n % REPS))
        rep = {
            "role": "owner",
            "slack": None,
            "email": f"rep{n % REPS}@example.com",
            "owner_id": str(n % REPS),
            "name": f"Rep {n % REPS}",
        }
        for kind in ("lead.assigned", "first_touch.warning"):
            keys.append(f"lead:{lead}:{kind}")
            queue(engine, lead, clock.now(), keys[-1], kind=kind, step_key=kind, recipient=rep)
    deliverer = SlackDeliverer(
        slack_client,
        engine,
        clock=clock,
        pacer=ChannelPacer(monotonic=slack_waits.monotonic, sleep=slack_waits.sleep),
        ops=OpsReporter(None, None, clock=clock),
    )
    fake_slack.failure_rate(0.3, (429, 500, 503), seed=7, apply_ratio=0.5)

    for _ in range(40):
        deliver_parallel(engine, deliverer, now=clock.now(), workers=8, limit=10_000)
        if all(r["status"] == "sent" for r in rows(engine)):
            break
        clock.advance(timedelta(minutes=15))  # past every backoff
    fake_slack.failure_rate(0)

    assert Counter(r["status"] for r in rows(engine)) == {"sent": 500}
    failures = Counter(c.status for c in fake_slack.calls if c.status != 200)
    assert failures[429] > 50 and failures[500] + failures[503] > 50
    assert sum(1 for c in fake_slack.calls if c.status >= 500 and c.applied) > 0
    posted = Counter(m["metadata"]["event_payload"]["key"] for m in fake_slack.all_messages())
    assert posted == Counter({correlation(k): 1 for k in keys})
    for row in rows(engine):  # the recorded ts is the message that went out
        assert row["result"]["ts"] in {
            m["ts"] for m in fake_slack.messages(row["result"]["channel"])
        }
