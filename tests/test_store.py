"""Storage behaviour on both engines: migrations, dedupe, re-splitting, concurrent workers."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine

from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import metadata, webhook_batches, webhook_events
from sla_bot.intake import store_batch
from sla_bot.splitter import split_pending
from tests.signing import batch, event

NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)


def _store(engine: Engine, events: list[dict[str, object]]) -> int:
    return store_batch(
        engine, body=batch(events), source="webhooks_api", signature_version="v3", received_at=NOW
    )


def test_migrations_produce_exactly_the_declared_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert migrate.is_current(engine)


def test_timestamps_come_back_as_aware_utc(engine: Engine) -> None:
    _store(engine, [event(1)])
    with engine.connect() as conn:
        received = conn.execute(select(webhook_batches.c.received_at)).scalar_one()
    assert received == NOW and received.tzinfo is not None


def test_duplicates_inside_one_batch_are_dropped(engine: Engine) -> None:
    _store(engine, [event(1), event(1), event(2)])
    result = split_pending(engine, now=NOW)
    assert (result.new, result.duplicates) == (2, 1)


def test_property_changes_differ_by_property_name(engine: Engine) -> None:
    base = {"kind": "contact.propertyChange", "object_id": 7}
    _store(
        engine,
        [
            event(1, propertyName="hs_lead_status", propertyValue="NEW", **base),
            event(1, propertyName="hubspot_owner_id", propertyValue="101", **base),
        ],
    )
    assert split_pending(engine, now=NOW).new == 2
    with engine.connect() as conn:
        names = (
            conn.execute(
                select(webhook_events.c.property_name).order_by(webhook_events.c.property_name)
            )
            .scalars()
            .all()
        )
    assert names == ["hs_lead_status", "hubspot_owner_id"]


def test_resplitting_a_batch_adds_nothing(engine: Engine) -> None:
    batch_id = _store(engine, [event(i) for i in range(10)])
    assert split_pending(engine, now=NOW).new == 10
    with engine.begin() as conn:  # as if the batch had been redelivered and stored again
        conn.execute(
            update(webhook_batches)
            .where(webhook_batches.c.id == batch_id)
            .values(processed_at=None)
        )
    result = split_pending(engine, now=NOW)
    assert (result.batches, result.new, result.duplicates) == (1, 0, 10)


def test_split_is_all_or_nothing_per_pass(engine: Engine) -> None:
    _store(engine, [event(1)])
    with pytest.raises(RuntimeError), engine.begin() as conn:  # a crash mid-transaction
        conn.execute(update(webhook_batches).values(processed_at=NOW))
        raise RuntimeError("killed")
    assert split_pending(engine, now=NOW).new == 1


def test_concurrent_splitters_process_each_batch_once(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers; the row-lock race matters on PostgreSQL")
    for b in range(40):
        _store(engine, [event(b * 10 + i) for i in range(10)])
    totals: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            r = split_pending(engine, now=NOW, limit=3)
            with lock:
                totals.append((r.batches, r.new))
            if r.batches == 0:
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(b for b, _ in totals) == 40
    assert sum(n for _, n in totals) == 400
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar_one() == 400


def test_migration_0010_backfills_body_hashes_and_keeps_old_replays(db_url: str) -> None:
    eng = make_engine(db_url)
    try:
        migrate.upgrade(eng, "0008")
        with eng.begin() as conn:
            for body in (b"[1]", b"[2]", b"[1]"):  # a replay stored before the migration
                conn.execute(
                    text(
                        "INSERT INTO webhook_batches (received_at, source, signature_version, body)"
                        " VALUES (:at, 'webhooks_api', 'v1', :body)"
                    ),
                    {"at": NOW, "body": body},
                )
        migrate.upgrade(eng)
        with eng.connect() as conn:
            rows = conn.execute(
                select(webhook_batches.c.body_sha256).order_by(webhook_batches.c.id)
            ).scalars()
            assert list(rows) == [
                hashlib.sha256(b"[1]").hexdigest(),
                hashlib.sha256(b"[2]").hexdigest(),
                None,
            ]
        migrate.downgrade(eng, "0008")
        migrate.upgrade(eng)
    finally:
        eng.dispose()


def test_the_same_body_is_stored_once(engine: Engine) -> None:
    first = _store(engine, [event(1)])
    assert _store(engine, [event(1)]) == first
    assert _store(engine, [event(2)]) != first
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_batches)).scalar_one() == 2


def test_bodies_are_compressed_at_rest_and_read_back_exactly(engine: Engine) -> None:
    """A batch's body takes ~1/18 of its size in the table (one page, not six, on SQLite's
    WAL); every reader gets the signed bytes back, including rows stored before compression
    and bodies too small to gain from it."""
    big = batch([event(i, object_id=i + 1) for i in range(100)])
    small = batch([event(1)])
    ids = [_store_body(engine, body) for body in (big, small)]
    with engine.begin() as conn:
        conn.execute(  # as rows were written before bodies were compressed
            text(
                "INSERT INTO webhook_batches (received_at, source, signature_version, body)"
                " VALUES (:at, 'webhooks_api', 'v3', :body)"
            ),
            {"at": NOW, "body": big + b" "},
        )
        stored = dict(conn.execute(text("SELECT id, length(body) FROM webhook_batches")).all())
        bodies = conn.execute(
            select(webhook_batches.c.body).order_by(webhook_batches.c.id)
        ).scalars()
        assert list(bodies) == [big, small, big + b" "]
    assert stored[ids[0]] < len(big) / 8
    assert stored[ids[1]] == len(small)
    split = split_pending(engine, now=NOW)  # the split reads the bodies, too
    assert (split.failed, split.new, split.duplicates) == (0, 101, 100)


def _store_body(engine: Engine, body: bytes) -> int:
    return store_batch(
        engine, body=body, source="webhooks_api", signature_version="v3", received_at=NOW
    )


def test_timestamps_written_outside_sqlalchemy_compare_equal(engine: Engine) -> None:
    """The webhook's INSERT and the splitter's run on the DBAPI connection; their timestamps
    must be stored as SQLAlchemy stores them (on SQLite, text with microseconds even when
    there are none), or `received_at == t` misses rows and `< t` takes them."""
    _store(engine, [event(1), event(2)])
    split_pending(engine, now=NOW)
    with engine.connect() as conn:
        for table in (webhook_batches, webhook_events):
            at = table.c.received_at
            count = select(func.count()).select_from(table)
            assert conn.execute(count.where(at == NOW)).scalar_one() > 0, table.name
            assert conn.execute(count.where(at < NOW)).scalar_one() == 0, table.name


def test_downgrade_below_0015_writes_compressed_bodies_back_as_received(db_url: str) -> None:
    """Code older than 0015 reads bodies as JSON: a downgrade leaves none compressed."""
    eng = make_engine(db_url)
    try:
        migrate.upgrade(eng)
        body = batch([event(i, object_id=i + 1) for i in range(50)])
        _store_body(eng, body)
        migrate.downgrade(eng, "0014")
        with eng.connect() as conn:
            stored = conn.execute(text("SELECT body FROM webhook_batches")).scalar_one()
        assert bytes(stored) == body
        migrate.upgrade(eng)
        assert migrate.is_current(eng)
    finally:
        eng.dispose()
