"""Retention: delete what is no longer needed, in small transactions, so no table grows forever.

What goes, oldest first (settings in sla_bot/config.py, documented in README):
- webhook events and raw batch bodies, once processed and older than SLA_BOT_RETAIN_WEBHOOKS
  (at least 72 h: the events' unique key is how HubSpot's redeliveries are recognised), except
  the events of a lead that is still open, and a batch while any of its events is kept;
- the audit trail (`lead_events`) and finished outbox rows of a lead closed (or ignored) longer
  than SLA_BOT_RETAIN_CLOSED_LEADS ago; finished outbox rows of no lead after the same time;
- batched-escalation entries of those leads, and a batch (closed as long ago) once none is left;
- dead letters last seen longer than SLA_BOT_RETAIN_DEAD_LETTERS ago;
- counter rows (`metric_series`) of processes idle for SLA_BOT_RETAIN_METRIC_SERIES are folded
  into one row per series, so every total on /metrics stays exactly what it was;
- heartbeats of workers gone for a day, used OAuth states and Slack lookups past their expiry.

Kept: lead rows (their state says which steps were decided, so a nudge is never sent twice),
outcome facts (`lead_outcomes`, `lead_outcome_events`: the measurement history), portals.
Children go before parents (events before their batch); nothing deleted here is referenced by
a kept row. Each chunk is its own short transaction: webhooks keep being acknowledged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, not_, select, true
from sqlalchemy.engine import Engine

from sla_bot import heartbeat, metrics_store
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import (
    dead_letters,
    lead_events,
    leads,
    metric_series,
    oauth_states,
    outbox,
    slack_batch_items,
    slack_batches,
    slack_users,
    webhook_batches,
    webhook_events,
    worker_heartbeats,
)
from sla_bot.increments import Increment

CHUNK = 1000
CLOSED = ("closed", "ignored")
FINISHED = ("sent", "failed", "cancelled")  # outbox rows nobody will deliver again
FOLDED = "(folded)"  # the metric_series process that holds idle processes' totals


@dataclass(frozen=True)
class Policy:
    """How long each kind of row is kept."""

    webhooks: timedelta = timedelta(days=7)
    closed_leads: timedelta = timedelta(days=90)
    dead_letters: timedelta = timedelta(days=30)
    metric_series: timedelta = timedelta(days=7)

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(
            webhooks=settings.retention("webhooks"),
            closed_leads=settings.retention("closed_leads"),
            dead_letters=settings.retention("dead_letters"),
            metric_series=settings.retention("metric_series"),
        )


@dataclass(frozen=True)
class Rule:
    """Rows of `table` matching `where`, deleted by `key` in chunks; or, with `lead` (the
    table's lead id column), those rows of the leads closed before `closed_before`."""

    table: Table
    key: Any
    where: ColumnElement[bool]
    lead: Any = None
    closed_before: datetime | None = None


def _closed_before(cutoff: datetime) -> ColumnElement[bool]:
    """Leads closed (or ignored) before `cutoff`."""
    return and_(
        leads.c.status.in_(CLOSED), func.coalesce(leads.c.closed_at, leads.c.updated_at) < cutoff
    )


def rules(policy: Policy, *, now: datetime, wall_now: datetime) -> list[Rule]:
    """In deletion order: children before the rows they reference."""
    webhooks_before = now - policy.webhooks
    closed_before = now - policy.closed_leads
    open_lead = exists().where(
        leads.c.portal_id == webhook_events.c.portal_id,
        leads.c.object_id == webhook_events.c.object_id,
        not_(leads.c.status.in_(CLOSED)),
    )
    event_goes = and_(
        webhook_events.c.processed_at.is_not(None),
        webhook_events.c.received_at < webhooks_before,
        not_(open_lead),
    )
    # A batch goes with its last event; said this way, a dry run counts it too.
    event_kept = exists().where(webhook_events.c.batch_id == webhook_batches.c.id, not_(event_goes))
    # Likewise a Slack batch goes with its last entry (entries go with their closed lead).
    item_kept = not_(
        exists().where(leads.c.id == slack_batch_items.c.lead_id, _closed_before(closed_before))
    )
    return [
        Rule(webhook_events, webhook_events.c.id, event_goes),
        Rule(
            webhook_batches,
            webhook_batches.c.id,
            and_(
                webhook_batches.c.processed_at.is_not(None),
                webhook_batches.c.received_at < webhooks_before,
                not_(event_kept),
            ),
        ),
        Rule(lead_events, lead_events.c.id, true(), lead_events.c.lead_id, closed_before),
        Rule(outbox, outbox.c.id, outbox.c.status.in_(FINISHED), outbox.c.lead_id, closed_before),
        Rule(
            outbox,
            outbox.c.id,
            and_(
                outbox.c.status.in_(FINISHED),
                outbox.c.lead_id.is_(None),
                outbox.c.decided_at < closed_before,
            ),
        ),
        Rule(
            slack_batch_items,
            slack_batch_items.c.id,
            true(),
            slack_batch_items.c.lead_id,
            closed_before,
        ),
        Rule(
            slack_batches,
            slack_batches.c.id,
            and_(
                slack_batches.c.closes_at < closed_before,
                not_(exists().where(slack_batch_items.c.batch_id == slack_batches.c.id, item_kept)),
            ),
        ),
        Rule(
            dead_letters, dead_letters.c.id, dead_letters.c.last_seen_at < now - policy.dead_letters
        ),
        Rule(
            worker_heartbeats,
            worker_heartbeats.c.worker_id,
            worker_heartbeats.c.beat_at < wall_now - heartbeat.KEEP_GONE_WORKERS,
        ),
        Rule(
            oauth_states, oauth_states.c.nonce, oauth_states.c.expires_at < now - timedelta(days=1)
        ),
        Rule(slack_users, slack_users.c.email, slack_users.c.expires_at < now),
    ]


def _idle_series(policy: Policy, now: datetime) -> ColumnElement[bool]:
    return and_(
        metric_series.c.updated_at < now - policy.metric_series, metric_series.c.process != FOLDED
    )


def prune(
    engine: Engine,
    policy: Policy,
    *,
    now: datetime,
    wall_now: datetime | None = None,
    dry_run: bool = False,
    chunk: int = CHUNK,
    stop: threading.Event | None = None,
    on_chunk: Callable[[str, int, float], None] | None = None,
) -> dict[str, int]:
    """Delete (or with `dry_run` count) what is past retention; {table: rows}.

    `now` is the service's clock (retention of domain rows); `wall_now` real time (heartbeats).
    `stop` is checked between chunks, so a worker shutting down waits for one chunk at most.
    `on_chunk(table, rows, seconds)` hears of each committed chunk (the bench's lock times).
    """
    wall = wall_now or heartbeat.wall_now()
    counts: dict[str, int] = {}
    for rule in rules(policy, now=now, wall_now=wall):
        name = rule.table.name
        if dry_run:
            where = rule.where
            if rule.lead is not None:
                assert rule.closed_before is not None
                closed = select(leads.c.id).where(_closed_before(rule.closed_before))
                where = and_(where, rule.lead.in_(closed))
            with engine.connect() as conn:
                n = conn.execute(select(func.count()).select_from(rule.table).where(where))
                counts[name] = counts.get(name, 0) + (n.scalar() or 0)
            continue
        delete_chunks = _delete_by_lead if rule.lead is not None else _delete_in_chunks
        counts[name] = counts.get(name, 0) + delete_chunks(engine, rule, chunk, stop, on_chunk)
    idle = _idle_series(policy, now)
    if dry_run:
        with engine.connect() as conn:
            counts[metric_series.name] = (
                conn.execute(select(func.count()).select_from(metric_series).where(idle)).scalar()
                or 0
            )
    else:
        counts[metric_series.name] = _fold_series(engine, idle, now, chunk, stop, on_chunk)
    return counts


def _delete_in_chunks(
    engine: Engine,
    rule: Rule,
    chunk: int,
    stop: threading.Event | None,
    on_chunk: Callable[[str, int, float], None] | None,
) -> int:
    total, last = 0, None
    while stop is None or not stop.is_set():
        # Onwards from the last key seen: rows kept (an open lead's) are passed over once.
        after = true() if last is None else rule.key > last
        picked = select(rule.key).where(rule.where, after).order_by(rule.key).limit(chunk)
        began = time.perf_counter()
        with write_transaction(engine, background=True) as conn:
            keys = list(conn.execute(picked).scalars())
            if keys:
                conn.execute(delete(rule.table).where(rule.key.in_(keys)))
        if on_chunk is not None:
            on_chunk(rule.table.name, len(keys), time.perf_counter() - began)
        total += len(keys)
        if len(keys) < chunk:
            break
        last = keys[-1]
    return total


def _delete_by_lead(
    engine: Engine,
    rule: Rule,
    chunk: int,
    stop: threading.Event | None,
    on_chunk: Callable[[str, int, float], None] | None,
) -> int:
    """Walk the long-closed leads in id order (a few per transaction) and delete their rows.

    Choosing leads first, each probed through the table's lead index, keeps every chunk cheap
    whatever the planner believes about the tables (a row-by-row join with the leads could be
    planned as a nested loop over both)."""
    assert rule.closed_before is not None
    per_chunk = max(1, chunk // 20)  # a lead has a handful to a few dozen rows
    has_rows = exists().where(rule.lead == leads.c.id, rule.where)
    last, total = 0, 0
    while stop is None or not stop.is_set():
        began = time.perf_counter()
        with write_transaction(engine, background=True) as conn:
            ids = list(
                conn.execute(
                    select(leads.c.id)
                    .where(leads.c.id > last, _closed_before(rule.closed_before), has_rows)
                    .order_by(leads.c.id)
                    .limit(per_chunk)
                ).scalars()
            )
            deleted = 0
            if ids:
                deleted = conn.execute(
                    delete(rule.table).where(rule.lead.in_(ids), rule.where)
                ).rowcount
        if on_chunk is not None:
            on_chunk(rule.table.name, deleted, time.perf_counter() - began)
        total += deleted
        if len(ids) < per_chunk:
            break
        last = ids[-1]
    return total


def _fold_series(
    engine: Engine,
    idle: ColumnElement[bool],
    now: datetime,
    chunk: int,
    stop: threading.Event | None,
    on_chunk: Callable[[str, int, float], None] | None,
) -> int:
    """Add idle processes' counter rows to the FOLDED process's, then delete them: the sums
    /metrics shows do not move, and the table holds one row per series and live process."""
    ms = metric_series
    total = 0
    while stop is None or not stop.is_set():
        began = time.perf_counter()
        with write_transaction(engine, background=True) as conn:
            rows = conn.execute(
                select(ms.c.name, ms.c.labels, ms.c.process, ms.c.value)
                .where(idle)
                .order_by(ms.c.name, ms.c.labels, ms.c.process)
                .limit(chunk)
                .with_for_update()
            ).all()
            if rows:
                metrics_store.add(
                    conn,
                    [
                        Increment(name, tuple(metrics_store.labels_of(labels).items()), value)
                        for name, labels, _process, value in rows
                    ],
                    now=now,
                    process=FOLDED,
                )
                for name, labels, process, _value in rows:
                    conn.execute(
                        delete(ms).where(
                            ms.c.name == name, ms.c.labels == labels, ms.c.process == process
                        )
                    )
        if on_chunk is not None:
            on_chunk(ms.name, len(rows), time.perf_counter() - began)
        total += len(rows)
        if len(rows) < chunk:
            break
    return total


def remaining(engine: Engine) -> dict[str, int]:
    """Rows per table after pruning (for `sla-bot db prune`)."""
    now = heartbeat.wall_now()
    tables = [r.table for r in rules(Policy(), now=now, wall_now=now)]
    out = {}
    with engine.connect() as conn:
        for table in [*tables, metric_series]:
            out[table.name] = conn.execute(select(func.count()).select_from(table)).scalar() or 0
    return out


def job(services: Any, stop: threading.Event | None = None) -> Callable[[], None]:
    """The worker's periodic retention job."""
    import logging

    log = logging.getLogger(__name__)
    policy = Policy.from_settings(services.settings)

    def run() -> None:
        counts = prune(services.engine, policy, now=services.clock.now(), stop=stop)
        if any(counts.values()):
            log.info(
                "retention: deleted %s",
                ", ".join(f"{n} {t}" for t, n in counts.items() if n),
            )

    return run
