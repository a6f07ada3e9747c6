"""Outcome metrics: the worker's counters in the database, the queue's gauges, one exposition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from sla_bot import metrics, metrics_store
from sla_bot.clock import FrozenClock
from sla_bot.heartbeat import Heartbeat
from sla_bot.metrics_db import DatabaseCollector
from sla_bot.outbox import DeliveryError, OutboxItem, deliver_due, enqueue
from tests.conftest import T0
from tests.engine.harness import Harness, prop
from tests.engine.test_events import PROPS
from tests.outcomes.util import contact

M = timedelta(minutes=1)
ALLOWED_LABELS = {
    "policy",
    "result",
    "step",
    "outcome",
    "channel",
    "api",
    "kind",
    "le",
    "reason",
    "endpoint",
    "status",
    "pid",
    "portal",  # a portal is not a rep or a lead
}


def _exposition(engine: Engine, clock: FrozenClock) -> dict[tuple[str, tuple], float]:
    body, _ = metrics.render(DatabaseCollector(engine, clock, ttl=0))
    samples: dict[tuple[str, tuple], float] = {}
    names = []
    for family in text_string_to_metric_families(body.decode()):
        names.append(family.name)
        for s in family.samples:
            if s.name.startswith("sla_bot_"):  # no rep, no lead (python_* are the runtime's)
                assert set(s.labels) <= ALLOWED_LABELS, (s.name, s.labels)
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert len(names) == len(set(names)), "a family appears twice"
    return samples


def test_a_breach_an_escalation_and_a_late_touch_show_on_metrics(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock, deliver=False)
    h.webhook(contact(1, PROPS), contact(2, PROPS))
    h.at(T0)
    policy = (("policy", "inbound_demo"),)
    got = _exposition(engine, clock)
    assert got[("sla_bot_open_leads", policy)] == 2
    assert got[("sla_bot_overdue_leads", policy)] == 0
    assert got.get(("sla_bot_first_touch_breaches_total", policy), 0) == 0
    h.at(T0 + 5 * M)  # both breach; ladder.1 tells the owner
    got = _exposition(engine, clock)
    assert got[("sla_bot_first_touch_breaches_total", policy)] == 2
    assert got[("sla_bot_escalations_total", (*policy, ("step", "ladder.1")))] == 2
    assert got[("sla_bot_overdue_leads", policy)] == 2
    # Undelivered Slack rows: the backlog and how long the oldest has waited.
    assert got[("sla_bot_outbox_backlog", (("channel", "slack"),))] >= 2
    clock.advance(timedelta(seconds=30))
    got = _exposition(engine, clock)
    assert got[("sla_bot_outbox_oldest_pending_age_seconds", (("channel", "slack"),))] >= 30
    h.webhook(prop(1, T0 + 6 * M, "num_contacted_notes", 1, n=1))
    h.at(T0 + 6 * M)
    got = _exposition(engine, clock)
    assert got[("sla_bot_first_touches_total", (*policy, ("result", "late")))] == 1
    assert got[("sla_bot_overdue_leads", policy)] == 1
    bucket = ("sla_bot_time_to_first_touch_business_seconds_bucket", (("le", "300.0"), *policy))
    assert got[bucket] == 0  # 360 s: above the 300 s bucket
    bucket = ("sla_bot_time_to_first_touch_business_seconds_bucket", (("le", "600.0"), *policy))
    assert got[bucket] == 1
    inf = ("sla_bot_time_to_first_touch_business_seconds_bucket", (("le", "+Inf"), *policy))
    assert got[inf] == 1
    assert got[("sla_bot_time_to_first_touch_business_seconds_sum", policy)] == 360
    assert got[("sla_bot_metrics_database_up", ())] == 1


def test_counts_from_web_processes_and_the_worker_add_up(
    engine: Engine, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = (("channel", "slack"), ("outcome", "sent"))
    key = ("sla_bot_deliveries_total", labels)
    before = _exposition(engine, clock).get(key, 0.0)
    metrics_store.count("sla_bot_deliveries_total", labels)  # a web process: prometheus_client
    buffer = metrics_store.Buffer()
    monkeypatch.setattr(metrics_store, "BUFFER", buffer)
    monkeypatch.setattr(metrics_store, "_buffering", True)  # the worker: the database
    metrics_store.count("sla_bot_deliveries_total", labels, 2)
    assert _exposition(engine, clock).get(key, 0.0) == before + 1  # not flushed yet
    assert buffer.flush(engine, now=clock.now()) == 1
    with engine.begin() as conn:  # another worker process
        metrics_store.add(conn, [metrics_store.Increment(*key, 4)], now=clock.now(), process="w2")
    assert _exposition(engine, clock)[key] == before + 7


def test_a_counted_deliverer_counts_each_outcome(
    engine: Engine, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = metrics_store.Buffer()
    monkeypatch.setattr(metrics_store, "BUFFER", buffer)
    monkeypatch.setattr(metrics_store, "_buffering", True)

    class Flaky:
        channel = "hubspot"

        def __init__(self) -> None:
            self.errors: list[Any] = [
                None,
                DeliveryError("x", permanent=False),
                DeliveryError("y", permanent=True),
            ]

        def deliver(self, item: OutboxItem) -> dict[str, Any]:
            error = self.errors.pop(0)
            if error is not None:
                raise error
            return {}

    counted = metrics_store.Counted(Flaky())
    before = _exposition(engine, clock)  # this process's counters may hold earlier tests' counts
    with engine.begin() as conn:
        for key in ("a", "b", "c"):
            enqueue(
                conn, key=key, channel="hubspot", kind="u", payload={}, portal_id=1, now=clock.now()
            )
    assert deliver_due(engine, counted, now=clock.now()) == (1, 1)
    buffer.flush(engine, now=clock.now())
    got = _exposition(engine, clock)
    for outcome in ("sent", "retry", "failed"):
        labels = (("channel", "hubspot"), ("outcome", outcome))
        key = ("sla_bot_deliveries_total", labels)
        assert got[key] - before.get(key, 0.0) == 1, outcome


def test_the_heartbeat_is_the_newest_beat_of_any_worker(engine: Engine, clock: FrozenClock) -> None:
    w1, w2 = Heartbeat("w1", "host", 1), Heartbeat("w2", "host", 2)
    w1.beat(engine, now=T0)
    w2.beat(engine, now=T0 + M)
    w1.beat(engine, now=T0 + 2 * M)
    got = _exposition(engine, clock)
    assert got[("sla_bot_worker_last_heartbeat_timestamp_seconds", ())] == (T0 + 2 * M).timestamp()


def test_metrics_answer_when_the_database_does_not(clock: FrozenClock, tmp_path: Any) -> None:
    from sla_bot.db.engine import make_engine

    missing = make_engine(f"sqlite:///{tmp_path / 'nothing-here' / 'db.sqlite'}")
    body, _ = metrics.render(DatabaseCollector(missing, clock, ttl=0))
    assert "sla_bot_metrics_database_up 0.0" in body.decode()
