"""An outbox claim reads the next due row in index order, however many rows are due at once.

After a sweep decides thousands of leads at one instant, every delivery thread claims from a
table where they are all due with the same next_attempt_at. A claim that sorted every due row
(the old OR with IS NULL) cost milliseconds of database CPU each and took the cores the
decisions needed; these tests hold the claim to an index range read in order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine

from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import outbox
from sla_bot.outbox import _claim, claim_query

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _rows(n: int, at: datetime, *, start: int = 0, channel: str = "slack") -> list[dict]:
    return [
        {
            "portal_id": 1,
            "object_id": start + i,
            "idempotency_key": f"{channel}:{start + i}",
            "channel": channel,
            "kind": "nudge",
            "payload": "{}",
            "status": "pending",
            "attempts": 0,
            "decided_at": at,
            "next_attempt_at": at,
        }
        for i in range(n)
    ]


def _plan(engine: Engine, now: datetime) -> str:
    query = claim_query(engine.dialect.name, "slack", now)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE outbox"))
            return "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {sql}")))
        return "\n".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))


def test_a_claim_among_thousands_due_at_once_reads_the_index_in_order(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(outbox), _rows(5_000, NOW))  # one sweep pass: one instant
        conn.execute(insert(outbox), _rows(500, NOW + timedelta(hours=1), start=5_000))
    plan = _plan(engine, NOW + timedelta(seconds=1))
    assert "ix_outbox_pending" in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan  # no sort of the due rows


def test_claims_take_due_rows_by_time_then_id_and_leave_later_ones(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(outbox), _rows(3, NOW + timedelta(seconds=5), start=10))
        conn.execute(insert(outbox), _rows(3, NOW, start=20))
        conn.execute(insert(outbox), _rows(1, NOW + timedelta(minutes=5), start=30))
        conn.execute(insert(outbox), _rows(1, NOW, start=40, channel="hubspot"))
        ids = dict(conn.execute(select(outbox.c.object_id, outbox.c.id)).all())
    at = NOW + timedelta(seconds=10)
    claimed = []
    while (item := _claim(engine, "slack", at)) is not None:
        claimed.append(item.id)
    assert claimed == [ids[o] for o in (20, 21, 22, 10, 11, 12)]


def test_migration_0016_gives_pending_rows_without_a_time_their_decision_time(
    db_url: str,
) -> None:
    eng = make_engine(db_url)
    try:
        migrate.upgrade(eng, "0015")
        row = {**_rows(1, NOW)[0], "next_attempt_at": None}
        done = {**_rows(1, NOW, start=1)[0], "status": "sent", "next_attempt_at": None}
        with eng.begin() as conn:
            conn.execute(insert(outbox), [row, done])
        migrate.upgrade(eng)
        with eng.connect() as conn:
            times = dict(conn.execute(select(outbox.c.status, outbox.c.next_attempt_at)).all())
        assert times == {"pending": NOW, "sent": None}
        item = _claim(eng, "slack", NOW + timedelta(seconds=1))
        assert item is not None and item.object_id == 0
        migrate.downgrade(eng, "0015")
        migrate.upgrade(eng)
        assert migrate.is_current(eng)
    finally:
        eng.dispose()
