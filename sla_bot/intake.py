"""The webhook request path's only writes: one raw batch row, or one dead letter.

One INSERT and one COMMIT per request is the cheapest durable write (splitting 100 events into
100 rows on the request path costs ~2.5x the time, see docs/architecture.md). Splitting and
deduplication happen in the worker (`sla_bot.splitter`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import dead_letters, webhook_batches


def store_batch(
    engine: Engine,
    *,
    body: bytes,
    source: str,
    signature_version: str,
    received_at: datetime,
    portal_hint: int | None = None,
) -> int:
    """Commit the raw body; return its id. Returns only once the row is durable."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            webhook_batches.insert().values(
                received_at=received_at,
                source=source,
                signature_version=signature_version,
                portal_hint=portal_hint,
                body=body,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


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
