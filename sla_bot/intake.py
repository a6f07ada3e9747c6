"""The webhook request path's only writes: one raw batch row, or one dead letter.

One INSERT and one COMMIT per request is the cheapest durable write (splitting 100 events into
100 rows on the request path costs ~2.5x the time, see docs/architecture.md). Splitting and
deduplication happen in the worker (`sla_bot.splitter`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from sla_bot.db.engine import sqlite_file, write_transaction
from sla_bot.db.hotpath import CompiledStatement, HotWriter
from sla_bot.db.schema import dead_letters, webhook_batches, webhook_signers


def store_batch(
    engine: Engine,
    *,
    body: bytes,
    source: str,
    signature_version: str,
    received_at: datetime,
    portal_hint: int | None = None,
    v3_signer: str | None = None,
) -> int:
    """Commit the raw body; return its id. Returns only once the row is durable.

    A body already stored (a HubSpot resend, or a replay) is not stored again: the existing
    row's id comes back. `v3_signer` records, in the same transaction, that this signer uses
    v3 (see `sla_bot.signers`). The common case runs on the raw DBAPI connection
    (`sla_bot.db.hotpath`); the same statements run through SQLAlchemy otherwise.
    """
    values = {
        "received_at": received_at,
        "source": source,
        "signature_version": signature_version,
        "portal_hint": portal_hint,
        "body": body,
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    if v3_signer is None and (sqlite_file(engine) or engine.dialect.name == "postgresql"):
        return _store_hot(engine, values)
    with write_transaction(engine) as conn:
        stmt = _insert_ignore(conn).values(**values)
        inserted = conn.execute(stmt.returning(webhook_batches.c.id)).scalar_one_or_none()
        if inserted is None:
            inserted = conn.execute(
                _existing_batch(), {"digest": values["body_sha256"]}
            ).scalar_one()
        if v3_signer is not None:
            conn.execute(
                _insert_ignore(conn, webhook_signers).values(
                    signer=v3_signer, v3_seen_at=received_at
                )
            )
        return int(inserted)


def _existing_batch() -> Any:
    return select(webhook_batches.c.id).where(webhook_batches.c.body_sha256 == bindparam("digest"))


def _store_hot(engine: Engine, values: dict[str, Any]) -> int:
    compiled = engine.__dict__.get("_sla_bot_store_batch")
    if compiled is None:
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        insert = (
            dialect.insert(webhook_batches)
            .values({name: bindparam(name) for name in values})
            .on_conflict_do_nothing()
            .returning(webhook_batches.c.id)
        )
        compiled = (CompiledStatement(insert, engine), CompiledStatement(_existing_batch(), engine))
        engine.__dict__["_sla_bot_store_batch"] = compiled
    insert_stmt, existing_stmt = compiled
    params = insert_stmt.params(values)

    def work(cur: Any) -> int:
        cur.execute(insert_stmt.sql, params)
        row = cur.fetchone()
        if row is None:  # already stored: this body is a resend or a replay
            cur.execute(existing_stmt.sql, existing_stmt.params({"digest": values["body_sha256"]}))
            row = cur.fetchone()
        return int(row[0])

    return int(HotWriter.of(engine).run(work))


def _insert_ignore(conn: Connection, table: Table = webhook_batches) -> Any:
    """INSERT that skips rows conflicting with a unique key (both dialects)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def store_dead_letter(
    engine: Engine,
    *,
    body: bytes,
    reason: str,
    received_at: datetime,
    source: str = "hubspot_webhook",
    content_type: str | None = None,
    signature_version: str | None = None,
) -> int:
    """Keep a signed-but-unusable body so nothing HubSpot sent us is lost; repeats bump a count."""
    digest = hashlib.sha256(body).hexdigest()
    with write_transaction(engine) as conn:
        existing = conn.execute(
            select(dead_letters.c.id).where(dead_letters.c.body_sha256 == digest)
        ).scalar_one_or_none()
        if existing is not None:
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == existing)
                .values(last_seen_at=received_at, times_seen=dead_letters.c.times_seen + 1)
            )
            return int(existing)
        result = conn.execute(
            dead_letters.insert().values(
                first_seen_at=received_at,
                last_seen_at=received_at,
                source=source,
                reason=reason[:4000],
                content_type=(content_type or "")[:255] or None,
                signature_version=signature_version,
                body=body,
                body_sha256=digest,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]
