"""What /metrics reads from the database: the worker's counters and gauges of the queue.

Counters (`metric_series`, see metrics_store.py) are summed over the processes that wrote them.
Gauges are counted when scraped (cached for `ttl` seconds per web process, so a scrape storm
costs one query): open and overdue leads per policy, the outbox backlog and the age of its
oldest due row per channel, and the worker's last heartbeat. No label names a rep or a lead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import Connection, case, func, select
from sqlalchemy.engine import Engine

from sla_bot import heartbeat, metrics_store
from sla_bot.clock import Clock
from sla_bot.db.schema import lead_outcomes, outbox
from sla_bot.engine import outcomes as oc

log = logging.getLogger(__name__)

DELIVERIES, API_ERRORS = metrics_store.DELIVERIES, metrics_store.API_ERRORS
# name -> (help, label names): every counter the worker keeps in the database.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    oc.FIRST_TOUCHES: ("First touches, by whether they came by the deadline", ("policy", "result")),
    oc.BREACHES: ("First-touch deadlines that passed without a touch", ("policy",)),
    oc.ESCALATIONS: ("Escalation ladder steps sent", ("policy", "step")),
    oc.OUTCOMES: ("Leads closed, by outcome", ("policy", "outcome")),
    DELIVERIES: (
        "Outbox delivery attempts, by outcome (sent, retry, failed)",
        ("channel", "outcome"),
    ),
    API_ERRORS: ("Failed HubSpot and Slack API calls", ("api", "kind")),
}
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    oc.TIME_TO_FIRST_TOUCH: (
        "Business seconds from the start of the clock to the first touch",
        oc.TIME_BUCKETS,
    ),
}
CHANNELS = ("slack", "hubspot")


HEARTBEAT = "sla_bot_worker_last_heartbeat_timestamp_seconds"


def last_heartbeat(conn: Connection) -> float | None:
    """The newest worker heartbeat (epoch seconds), from `worker_heartbeats` as /readyz reads."""
    latest = heartbeat.latest_beat(conn)
    return latest.timestamp() if latest is not None else None


class DatabaseCollector:
    """A prometheus_client collector over the database (registered per scrape, see metrics.py)."""

    def __init__(self, engine: Engine, clock: Clock, ttl: float = 10.0) -> None:
        self.engine, self.clock, self.ttl = engine, clock, ttl
        self._lock = threading.Lock()
        self._gauges: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "sla_bot_metrics_database_up", "1 if /metrics could read the database just now"
        )
        try:
            with self.engine.connect() as conn:
                totals = metrics_store.totals(conn)
                latest = last_heartbeat(conn)
            families = [*self._counters(totals, latest), *self._gauges_cached()]
        except Exception as exc:  # /metrics must answer even when the database does not
            log.warning("metrics: cannot read the database (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _counters(self, totals: dict[tuple[str, str], float], latest: float | None) -> list[Metric]:
        out: list[Metric] = []
        for name, (doc, labels) in COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=labels)
            for (series, key), value in sorted(totals.items()):
                if series == name:
                    got = metrics_store.labels_of(key)
                    family.add_metric([got.get(label, "") for label in labels], value)
            out.append(family)
        for name, (doc, buckets) in HISTOGRAMS.items():
            out.append(_histogram(name, doc, buckets, totals))
        beat = GaugeMetricFamily(
            HEARTBEAT,
            "When a worker last reported alive (Unix time); alert when it stops moving",
        )
        if latest is not None:
            beat.add_metric([], latest)
        out.append(beat)
        return out

    def _gauges_cached(self) -> list[Metric]:
        with self._lock:
            cached = self._gauges
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
        fresh = self._gauges_now(self.clock.now())
        with self._lock:
            self._gauges = (time.monotonic(), fresh)
        return fresh

    def _gauges_now(self, now: datetime) -> list[Metric]:
        open_leads = GaugeMetricFamily(
            "sla_bot_open_leads",
            "Leads whose clock runs and that are not closed",
            labels=["policy"],
        )
        overdue = GaugeMetricFamily(
            "sla_bot_overdue_leads",
            "Open leads past their first-touch deadline without a touch",
            labels=["policy"],
        )
        backlog = GaugeMetricFamily(
            "sla_bot_outbox_backlog",
            "Outbox rows due for delivery and not delivered",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "sla_bot_outbox_oldest_pending_age_seconds",
            "How long the longest-waiting due outbox row has waited past its delivery time",
            labels=["channel"],
        )
        overdue_case = case(
            (
                (lead_outcomes.c.result == "breached") & lead_outcomes.c.first_touch_at.is_(None),
                1,
            ),
            else_=0,
        )
        with self.engine.connect() as conn:
            per_policy = conn.execute(
                select(lead_outcomes.c.policy, func.count(), func.sum(overdue_case))
                .where(lead_outcomes.c.outcome == "open")
                .group_by(lead_outcomes.c.policy)
            ).all()
            queue = conn.execute(
                select(outbox.c.channel, func.count(), func.min(outbox.c.next_attempt_at))
                .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
                .group_by(outbox.c.channel)
            ).all()
        for policy, count, late in per_policy:
            open_leads.add_metric([policy], count)
            overdue.add_metric([policy], late or 0)
        seen = {channel: (count, first) for channel, count, first in queue}
        for channel in sorted({*CHANNELS, *seen}):
            count, first = seen.get(channel, (0, None))
            backlog.add_metric([channel], count)
            age = (now - first).total_seconds() if first is not None else 0.0
            oldest.add_metric([channel], max(age, 0.0))
        return [open_leads, overdue, backlog, oldest]


def _histogram(
    name: str, doc: str, buckets: tuple[float, ...], totals: dict[tuple[str, str], float]
) -> Metric:
    """Rebuild a histogram from its non-cumulative bucket rows, `_sum` and `_count`."""
    family = HistogramMetricFamily(name, doc, labels=["policy"])
    by_labels: dict[tuple[str, ...], dict[str, float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    for (series, key), value in totals.items():
        labels = metrics_store.labels_of(key)
        policy = (labels.get("policy", ""),)
        if series == f"{name}_bucket":
            by_labels.setdefault(policy, {})[labels.get("le", "+Inf")] = value
        elif series == f"{name}_sum":
            sums[policy] = value
    for policy, counts in sorted(by_labels.items()):
        cumulative, running = [], 0.0
        for bound in [*(repr(b) for b in buckets), "+Inf"]:
            running += counts.get(bound, 0.0)
            cumulative.append((bound, running))
        family.add_metric(list(policy), cumulative, sums.get(policy, 0.0))
    return family
