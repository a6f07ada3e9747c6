"""The webhook request path's only writes: one raw batch row, or one dead letter.

One INSERT and one COMMIT per request is the cheapest durable write (splitting 100 events into
100 rows on the request path costs ~2.5x the time, see docs/architecture.md). Splitting and
deduplication happen in the worker (`sla_bot.splitter`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
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
    v3 (see `sla_bot.signers`).
    """
    digest = hashlib.sha256(body).hexdigest()
    with write_transaction(engine) as conn:
        stmt = _insert_ignore(conn).values(
            received_at=received_at,
            source=source,
            signature_version=signature_version,
            portal_hint=portal_hint,
            body=body,
            body_sha256=digest,
        )
        inserted = conn.execute(stmt.returning(webhook_batches.c.id)).scalar_one_or_none()
        if inserted is None:
            inserted = conn.execute(
                select(webhook_batches.c.id).where(webhook_batches.c.body_sha256 == digest)
            ).scalar_one()
        if v3_signer is not None:
            conn.execute(
                _insert_ignore(conn, webhook_signers).values(
                    signer=v3_signer, v3_seen_at=received_at
                )
            )
        return int(inserted)


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
