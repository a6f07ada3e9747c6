"""Retention on a database holding a year of history: what the settings keep stays, the rest goes,
and nothing an open lead needs is touched (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine

from sla_bot import metrics_store, retention
from sla_bot.db.schema import (
    dead_letters,
    lead_events,
    lead_outcomes,
    leads,
    metric_series,
    outbox,
    slack_batch_items,
    slack_batches,
    webhook_batches,
    webhook_events,
    worker_heartbeats,
)
from tests.test_cli import run

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DAYS = 365
OPEN = 5  # open leads, with history all year long
POLICY = retention.Policy(
    webhooks=timedelta(days=7),
    closed_leads=timedelta(days=90),
    dead_letters=timedelta(days=30),
    metric_series=timedelta(days=7),
)
DELIVERIES = "sla_bot_deliveries_total"
LABELS = metrics_store.labels_key((("channel", "slack"), ("outcome", "sent")))


def _ago(days: int) -> datetime:
    return NOW - timedelta(days=days, hours=1)


def seed_year(engine: Engine) -> None:
    """One closed lead a day for a year (closed that day), OPEN open leads with a year of
    events, webhooks, dead letters and counter rows of a process a day; bulk inserts."""
    lead_rows, outcome_rows, events, outbox_rows, batches, wh_events = [], [], [], [], [], []
    dead, series, slack_b, slack_items = [], [], [], []
    for i in range(OPEN):
        lead_id = 10_000 + i
        lead_rows.append(
            {"id": lead_id, "portal_id": 1, "object_id": lead_id, "status": "open",
             "updated_at": _ago(DAYS)}
        )  # fmt: skip
    for d in range(DAYS):
        at = _ago(d)
        lead_rows.append(
            {"id": d + 1, "portal_id": 1, "object_id": d + 1, "status": "closed",
             "closed_at": at, "closed_reason": "stopped", "updated_at": at}
        )  # fmt: skip
        outcome_rows.append(
            {"lead_id": d + 1, "portal_id": 1, "object_id": d + 1, "policy": "p",
             "started_at": at - timedelta(days=1), "outcome": "converted", "updated_at": at}
        )  # fmt: skip
        open_id = 10_000 + d % OPEN
        for lead_id in (d + 1, d + 1, d + 1, open_id):
            events.append({"lead_id": lead_id, "at": at, "kind": "step.fired", "detail": "{}"})
        for n, (lead_id, status) in enumerate(
            [(d + 1, "sent"), (d + 1, "failed"), (open_id, "sent"), (None, "sent")]
        ):
            outbox_rows.append(
                {"lead_id": lead_id, "portal_id": 1, "object_id": lead_id,
                 "idempotency_key": f"k{d}.{n}", "channel": "slack", "kind": "nudge",
                 "payload": "{}", "status": status, "decided_at": at}
            )  # fmt: skip
        for b, object_id in ((2 * d + 1, d + 1), (2 * d + 2, open_id)):
            batches.append(
                {"id": b, "received_at": at, "source": "webhooks_api", "signature_version": "v3",
                 "body": b"[]", "processed_at": at}
            )  # fmt: skip
            wh_events.append(
                {"portal_id": 1, "object_id": object_id, "subscription_type": "contact.creation",
                 "subscription_id": 1, "event_id": b, "occurred_at_ms": 0, "batch_index": 0,
                 "batch_id": b, "received_at": at, "processed_at": at, "outcome": "applied"}
            )  # fmt: skip
        for b, lead_id in ((2 * d + 1, d + 1), (2 * d + 2, open_id)):  # a batched escalation each
            slack_b.append(
                {"id": b, "portal_id": 1, "batch_key": f"1:manager:{b}", "target": "U1",
                 "opened_at": at, "closes_at": at, "post_at": at, "shown": 1, "updated_at": at}
            )  # fmt: skip
            slack_items.append(
                {"batch_id": b, "outbox_id": b, "lead_id": lead_id, "payload": "{}",
                 "folded": 0, "added_at": at}
            )  # fmt: skip
        dead.append(
            {"first_seen_at": at, "last_seen_at": at, "source": "hubspot_webhook",
             "reason": "bad", "body": b"x", "body_sha256": f"{d:064d}"}
        )  # fmt: skip
        series.append(
            {"name": DELIVERIES, "labels": LABELS, "process": f"p{d}", "value": 1.0,
             "updated_at": at}
        )  # fmt: skip
    # Never deleted however old: a batch not split yet, an undelivered message of a closed lead.
    batches.append(
        {"id": 9_999, "received_at": _ago(DAYS), "source": "webhooks_api",
         "signature_version": "v3", "body": b"[]", "processed_at": None}
    )  # fmt: skip
    wh_events.append(
        {"portal_id": 1, "object_id": 1, "subscription_type": "contact.creation",
         "subscription_id": 1, "event_id": 9_999, "occurred_at_ms": 0, "batch_index": 0,
         "batch_id": 9_999, "received_at": _ago(DAYS), "processed_at": None, "outcome": None}
    )  # fmt: skip
    outbox_rows.append(
        {"lead_id": DAYS, "portal_id": 1, "object_id": DAYS, "idempotency_key": "pending",
         "channel": "slack", "kind": "nudge", "payload": "{}", "status": "pending",
         "decided_at": _ago(DAYS - 1)}
    )  # fmt: skip
    beats = [
        {"worker_id": w, "host": "h", "pid": 1, "started_at": _ago(3), "beat_at": at}
        for w, at in (("gone", NOW - timedelta(days=2)), ("alive", NOW))
    ]
    with engine.begin() as conn:
        for table, rows in (
            (leads, lead_rows),
            (lead_outcomes, outcome_rows),
            (lead_events, events),
            (outbox, outbox_rows),
            (webhook_batches, batches),
            (webhook_events, wh_events),
            (dead_letters, dead),
            (metric_series, series),
            (worker_heartbeats, beats),
            (slack_batches, slack_b),
            (slack_batch_items, slack_items),
        ):
            conn.execute(table.insert(), rows)


def count(engine: Engine, table: Table, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


def open_leads_rows(engine: Engine) -> dict[str, list[Any]]:
    open_ids = select(leads.c.id).where(leads.c.status == "open")
    with engine.connect() as conn:
        return {
            "lead_events": conn.execute(
                select(lead_events).where(lead_events.c.lead_id.in_(open_ids))
            ).all(),
            "outbox": conn.execute(select(outbox).where(outbox.c.lead_id.in_(open_ids))).all(),
            "webhook_events": conn.execute(
                select(webhook_events).where(webhook_events.c.object_id >= 10_000)
            ).all(),
        }


EXPECTED_LEFT = {
    # 7 days of closed leads' events, every open lead's, the unsplit one
    "webhook_events": 7 + DAYS + 1,
    "webhook_batches": 7 + DAYS + 1,
    # closed in the last 90 days: 3 each; every open lead's
    "lead_events": 90 * 3 + DAYS,
    # 90 days of closed leads' (2 each) and of lead-less rows, every open lead's, the pending one
    "outbox": 90 * 2 + 90 + DAYS + 1,
    "dead_letters": 30,
    # batches of leads closed in the last 90 days, every open lead's
    "slack_batch_items": 90 + DAYS,
    "slack_batches": 90 + DAYS,
    "worker_heartbeats": 1,
    # 7 recent processes + one folded row
    "metric_series": 7 + 1,
}


def test_prune_keeps_what_the_settings_say_and_every_open_lead_row(engine: Engine) -> None:
    seed_year(engine)
    before = open_leads_rows(engine)
    planned = retention.prune(engine, POLICY, now=NOW, wall_now=NOW, dry_run=True)
    assert count(engine, webhook_events) == 2 * DAYS + 1  # a dry run deletes nothing

    deleted = retention.prune(engine, POLICY, now=NOW, wall_now=NOW, chunk=100)

    assert deleted == planned
    left = retention.remaining(engine)
    for table, expected in EXPECTED_LEFT.items():
        assert left[table] == expected, table
    assert open_leads_rows(engine) == before
    assert count(engine, leads) == DAYS + OPEN  # lead rows and outcome facts stay
    assert count(engine, lead_outcomes) == DAYS
    with engine.connect() as conn:  # /metrics totals do not move
        totals = metrics_store.totals(conn)
    assert totals[(DELIVERIES, LABELS)] == DAYS
    assert retention.prune(engine, POLICY, now=NOW, wall_now=NOW)["webhook_events"] == 0


def test_prune_stops_between_chunks_when_the_worker_stops(engine: Engine) -> None:
    import threading

    seed_year(engine)
    stop = threading.Event()
    stop.set()
    assert not any(retention.prune(engine, POLICY, now=NOW, wall_now=NOW, stop=stop).values())
    assert count(engine, webhook_events) == 2 * DAYS + 1


@pytest.mark.parametrize("dry_run", [True, False])
def test_db_prune_command_prints_rows_per_table(tmp_path: Any, dry_run: bool) -> None:
    from sla_bot.db import migrate
    from sla_bot.db.engine import make_engine

    url = f"sqlite:///{tmp_path / 'prune.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            dead_letters.insert(),
            [
                {"first_seen_at": at, "last_seen_at": at, "source": "hubspot_webhook",
                 "reason": "bad", "body": b"x", "body_sha256": f"{n:064d}"}
                for n, at in enumerate([datetime.now(UTC) - timedelta(days=40), datetime.now(UTC)])
            ],
        )  # fmt: skip
    env = {"DATABASE_URL": url, "SLA_BOT_RETAIN_DEAD_LETTERS": "30d"}
    result = run("db", "prune", *(["--dry-run"] if dry_run else []), env=env)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("dead_letters"))
    assert line.split()[1:] == (["1", "2"] if dry_run else ["1", "1"])
    assert count(engine, dead_letters) == (2 if dry_run else 1)
