"""What a worker keeps in memory stays bounded over months of running."""

from __future__ import annotations

from datetime import timedelta

from integrations.slack.ops import OpsReporter
from sla_bot.clock import FrozenClock
from sla_bot.log_deliverer import LogDeliverer
from sla_bot.outbox import OutboxItem
from tests.conftest import T0


def _item(n: int) -> OutboxItem:
    payload = {"text": f"message {n}", "recipient": {"role": "owner", "name": "Alex"}}
    return OutboxItem(n, None, 1, None, f"k{n}", "slack", "nudge", payload, 1, None)


def test_the_console_notifier_keeps_only_its_latest_lines() -> None:
    deliverer = LogDeliverer(keep=100)
    for n in range(5_000):
        deliverer.deliver(_item(n))
    assert len(deliverer.lines) == 100
    assert deliverer.lines[-1].endswith("message 4999")
    assert len(LogDeliverer().lines) == 0  # a default bound exists too
    assert LogDeliverer().lines.maxlen


def test_the_ops_reporter_forgets_problems_older_than_its_window() -> None:
    clock = FrozenClock(T0)
    ops = OpsReporter(None, None, clock=clock, every=timedelta(hours=1))
    assert ops.note("owner:1", "unmapped owner 1")
    assert not ops.note("owner:1", "unmapped owner 1")  # still once an hour
    for n in range(500):
        clock.advance(timedelta(minutes=1))
        ops.note(f"owner:{n + 2}", f"unmapped owner {n + 2}")
    assert ops.remembered() <= 61  # only the last hour's
    assert ops.note("owner:1", "unmapped owner 1")  # reported again after its hour


def test_the_ops_reporter_remembers_at_most_max_keys() -> None:
    ops = OpsReporter(None, None, clock=FrozenClock(T0), max_keys=1_000)
    for n in range(5_000):
        ops.note(f"k{n}", "problem")
    assert ops.remembered() == 1_000
    assert not ops.note("k4999", "problem")  # the newest are the ones kept
