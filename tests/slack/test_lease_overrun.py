"""Acceptance: a Slack deliverer that outlives its lease posts nothing more, records nothing and
does not count the row as sent (old code: the chunk it had claimed was posted twice)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from integrations.slack.deliverer import SlackDeliverer, correlation
from integrations.slack.fake import FakeSlack
from sla_bot.clock import FrozenClock
from sla_bot.outbox import deliver_due
from tests.slack.conftest import OPS
from tests.slack.helpers import add_lead, queue, rows


def test_a_stalled_worker_whose_lease_was_taken_over_posts_nothing(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    keys = []
    for n in range(2):
        lead = add_lead(engine, clock.now(), object_id=901 + n)
        keys.append(f"lead:{lead}:assigned")
        queue(engine, lead, clock.now(), keys[-1])
    taken_over: list[tuple[int, int]] = []

    class Stalling:
        """Worker A: stalls (a GC pause, a frozen VM) past its lease on its first row, while
        worker B delivers everything; then carries on with the real deliverer."""

        channel = "slack"

        def deliver(self, item: Any) -> dict[str, Any]:
            if not taken_over:
                clock.advance(timedelta(minutes=3))
                taken_over.append(deliver_due(engine, deliverer, now=clock.now()))
            return deliverer.deliver(item)

    sent_by_a = deliver_due(engine, Stalling(), now=clock.now())

    assert taken_over == [(2, 0)]
    assert sent_by_a == (0, 0)  # the loser counts nothing as sent
    messages = [m for m in workspace.all_messages() if m["channel"] != OPS]
    posted = Counter(m["metadata"]["event_payload"]["key"] for m in messages)
    assert posted == Counter({correlation(k): 1 for k in keys})
    assert [(r["status"], r["attempts"]) for r in rows(engine)] == [("sent", 2), ("sent", 1)]
