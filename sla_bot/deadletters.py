"""`sla-bot dead-letters`: list and show signed webhook bodies that could not be used.

Nothing HubSpot signed is dropped: unusable bodies are kept (deduplicated by SHA-256) so ops can
see what arrived, why it was refused, and replay it once the cause is fixed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import select, update


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dead-letters",
        help="list signed webhook bodies that could not be used",
        description="List, show or resolve signed webhook bodies the service kept because it "
        "could not use them, with the reason. Reads DATABASE_URL.",
    )
    p.add_argument("--show", type=int, metavar="ID", help="print one body in full")
    p.add_argument("--resolve", type=int, metavar="ID", help="mark one as handled")
    p.add_argument("--all", action="store_true", help="include resolved ones")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sla_bot.cli import require_database, require_schema_current, settings_from_env
    from sla_bot.clock import SystemClock
    from sla_bot.db.engine import make_engine, write_transaction
    from sla_bot.db.schema import dead_letters as dl

    settings = settings_from_env()
    require_database(settings)
    engine = make_engine(settings.database_url)
    require_schema_current(engine, settings)
    if args.show is not None:
        with engine.connect() as conn:
            row = conn.execute(select(dl).where(dl.c.id == args.show)).first()
        if row is None:
            print(f"no dead letter {args.show}", file=sys.stderr)
            return 1
        print(
            f"id {row.id}  seen {row.times_seen}x  first {row.first_seen_at:%Y-%m-%d %H:%M:%S}"
            f"  signature {row.signature_version}\nreason: {row.reason}\n"
        )
        sys.stdout.write(row.body.decode("utf-8", errors="replace") + "\n")
        return 0
    if args.resolve is not None:
        with write_transaction(engine) as conn:
            done = conn.execute(
                update(dl).where(dl.c.id == args.resolve).values(resolved_at=SystemClock().now())
            ).rowcount
        print("resolved" if done else f"no dead letter {args.resolve}")
        return 0 if done else 1
    query = select(dl.c.id, dl.c.last_seen_at, dl.c.times_seen, dl.c.reason, dl.c.resolved_at)
    if not args.all:
        query = query.where(dl.c.resolved_at.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(dl.c.id)).all()
    if not rows:
        print("no dead letters")
        return 0
    for r in rows:
        state = " (resolved)" if r.resolved_at else ""
        print(
            f"{r.id:>6}  {r.last_seen_at:%Y-%m-%d %H:%M}  x{r.times_seen:<4} {r.reason[:100]}"
            f"{state}"
        )
    return 0
