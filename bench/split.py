"""Benchmark: the worker's splitting of stored 100-event batches into event rows.

Stores N distinct signed-shape batches (as the webhook endpoint does), then times
`split_pending` until all are split, and prints CPU and wall time per batch. Splitting runs in
the worker; under `sla-bot serve` it shares the machine with intake, so its CPU per batch sets
how much intake a small machine sustains.

    python bench/split.py                      # SQLite (synchronous=FULL), 300 batches
    python bench/split.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

On PostgreSQL it works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from sla_bot.db import migrate  # noqa: E402
from sla_bot.db.engine import make_engine  # noqa: E402
from sla_bot.intake import store_batch  # noqa: E402
from sla_bot.splitter import split_pending  # noqa: E402
from tests.signing import event  # noqa: E402

EVENTS_PER_BATCH = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sla-bot-split-"))
    url = args.database_url or f"sqlite:///{workdir / 'split.db'}"
    schema = None
    if url.startswith("postgresql"):
        schema = f"bench_split_{os.getpid()}"
        with make_engine(url).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = str(
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    engine = make_engine(url)
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    stamp = int(time.time()) % 100_000
    for i in range(args.batches):
        base = (stamp * 10_000 + i) * EVENTS_PER_BATCH
        events = [event(base + j, object_id=base + j + 1) for j in range(EVENTS_PER_BATCH)]
        store_batch(
            engine,
            body=json.dumps(events).encode(),
            source="webhooks_api",
            signature_version="v3",
            received_at=now,
        )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    done = events_new = 0
    while done < args.batches:
        result = split_pending(engine, now=now)
        if not result.batches:
            break
        done += result.batches
        events_new += result.new
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"database: {engine.url.render_as_string(hide_password=True).split('@')[-1]}")
    print(
        f"{done} batches ({events_new} new events): {cpu / done * 1000:.2f} ms CPU and "
        f"{wall / done * 1000:.2f} ms wall per {EVENTS_PER_BATCH}-event batch "
        f"({done * EVENTS_PER_BATCH / wall:,.0f} events/s), one process"
    )
    engine.dispose()
    if schema is not None:
        with make_engine(args.database_url).begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
