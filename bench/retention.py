"""Benchmark retention: rows deleted per second, and the longest single chunk (how long one prune
transaction holds the write lock, i.e. the most a webhook can wait behind it).

    python -m bench.retention --leads-per-day 200 [--days 365] [--db sqlite|postgresql|both]
                              [--pg URL] [--chunk 1000]

A year of closed leads (closed the day they came in) is bulk-inserted: per lead 4 audit rows,
2 delivered outbox rows, one webhook batch with 2 events; plus a dead letter a day. Then one
`prune` with the default settings (webhooks 7 d, closed leads 90 d, dead letters 30 d).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from sla_bot import retention
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import (
    dead_letters,
    lead_events,
    leads,
    outbox,
    webhook_batches,
    webhook_events,
)

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def seed(engine: Engine, days: int, per_day: int) -> int:
    """Bulk-insert the history; returns the rows inserted."""
    inserted = 0
    lead_id = batch_id = 0
    for d in range(days):
        at = NOW - timedelta(days=d, hours=1)
        rows: dict[str, list[dict[str, object]]] = {
            "leads": [],
            "lead_events": [],
            "outbox": [],
            "webhook_batches": [],
            "webhook_events": [],
        }
        for _ in range(per_day):
            lead_id += 1
            batch_id += 1
            rows["leads"].append(
                {"id": lead_id, "portal_id": 1, "object_id": lead_id, "status": "closed",
                 "closed_at": at, "updated_at": at}
            )  # fmt: skip
            rows["lead_events"] += [
                {"lead_id": lead_id, "at": at, "kind": "step.fired", "detail": "{}"}
            ] * 4
            rows["outbox"] += [
                {"lead_id": lead_id, "portal_id": 1, "object_id": lead_id,
                 "idempotency_key": f"{lead_id}.{n}", "channel": "slack", "kind": "nudge",
                 "payload": "{}", "status": "sent", "decided_at": at}
                for n in range(2)
            ]  # fmt: skip
            rows["webhook_batches"].append(
                {"id": batch_id, "received_at": at, "source": "webhooks_api",
                 "signature_version": "v3", "body": b"[" + b" " * 400 + b"]", "processed_at": at}
            )  # fmt: skip
            rows["webhook_events"] += [
                {"portal_id": 1, "object_id": lead_id, "subscription_type": "contact.creation",
                 "subscription_id": 1, "event_id": 2 * batch_id + n, "occurred_at_ms": 0,
                 "batch_index": n, "batch_id": batch_id, "received_at": at, "processed_at": at,
                 "outcome": "applied"}
                for n in range(2)
            ]  # fmt: skip
        dead = [
            {"first_seen_at": at, "last_seen_at": at, "source": "hubspot_webhook",
             "reason": "bad", "body": b"x", "body_sha256": f"{d:064d}"}
        ]  # fmt: skip
        with engine.begin() as conn:
            for table in (leads, lead_events, outbox, webhook_batches, webhook_events):
                conn.execute(table.insert(), rows[table.name])
                inserted += len(rows[table.name])
            conn.execute(dead_letters.insert(), dead)
            inserted += 1
    return inserted


def run_one(url: str, days: int, per_day: int, chunk: int) -> dict[str, object]:
    engine = make_engine(url)
    migrate.upgrade(engine)
    began = time.perf_counter()
    inserted = seed(engine, days, per_day)
    seeded_s = time.perf_counter() - began
    chunks: list[float] = []
    began = time.perf_counter()
    counts = retention.prune(
        engine,
        retention.Policy(),
        now=NOW,
        chunk=chunk,
        on_chunk=lambda _t, _n, seconds: chunks.append(seconds),
    )
    took = time.perf_counter() - began
    deleted = sum(counts.values())
    chunks.sort()
    engine.dispose()
    return {
        "db": engine.dialect.name,
        "rows_before": inserted,
        "seed_s": round(seeded_s, 2),
        "deleted": deleted,
        "prune_s": round(took, 2),
        "rows_per_s": round(deleted / took),
        "chunks": len(chunks),
        "chunk_p50_ms": round(1000 * chunks[len(chunks) // 2], 1),
        "chunk_max_ms": round(1000 * chunks[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--leads-per-day", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=retention.CHUNK)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--pg", default=os.environ.get("SLA_BOT_TEST_DATABASE_URL"))
    args = parser.parse_args()
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            print(json.dumps(run_one(url, args.days, args.leads_per_day, args.chunk)))
    if args.db in ("postgresql", "both"):
        if not args.pg:
            raise SystemExit("--pg URL (or SLA_BOT_TEST_DATABASE_URL) is needed for PostgreSQL")
        from tests.conftest import pg_schema_url

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.pg)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = pg_schema_url(args.pg, schema)
            print(json.dumps(run_one(url, args.days, args.leads_per_day, args.chunk)))
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
