"""The outbox: decided side effects, delivered by channel-specific deliverers.

Deciding and delivering are separate steps (healthchecks' Flip, a transactional outbox). The
engine inserts rows in the same transaction as the lead change that decided them; the unique
`idempotency_key` makes deciding a step twice impossible. Delivery claims rows with a lease
(`next_attempt_at = now + LEASE`), calls the deliverer outside any transaction, then records the
outcome. A worker that dies mid-send leaves the lease to expire and the row is tried again, so
deliverers must be idempotent: they get the previous attempt's `result` (e.g. a Slack `ts`
recorded before a timeout) and should check before sending twice.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.engine import Engine

from sla_bot.clock import Clock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import outbox

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
CLAIM_CHUNK = 10  # a lease covers only the rows delivered right after it, not a long batch
MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class OutboxItem:
    id: int
    lead_id: int | None
    portal_id: int
    object_id: int | None
    idempotency_key: str
    channel: str
    kind: str
    payload: dict[str, Any]
    attempts: int  # including the current one
    result: dict[str, Any] | None  # what an earlier attempt recorded, if anything


class DeliveryError(Exception):
    """A failed delivery. `permanent`: retrying cannot help (e.g. channel_not_found)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.result = dict(result) if result else None  # partial progress to keep


class Deliverer(Protocol):
    """Delivers one channel's rows ("slack", "hubspot", ...)."""

    channel: str

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        """Do the side effect; return what to record (ids, ts). Raise DeliveryError on failure."""
        ...


def enqueue(
    conn: Connection,
    *,
    key: str,
    channel: str,
    kind: str,
    payload: Mapping[str, Any],
    portal_id: int,
    now: datetime,
    lead_id: int | None = None,
    object_id: int | None = None,
    due_at: datetime | None = None,
    deliver_at: datetime | None = None,
    step: str | None = None,
    recipient: str | None = None,
) -> bool:
    """Insert one decided item in the caller's transaction; False if the key already exists.
    `step`: the step occurrence it belongs to; `recipient`: "<role>:<id>" for messages."""
    from sqlalchemy.dialects import postgresql, sqlite

    values = dict(
        step=step,
        recipient=recipient,
        lead_id=lead_id,
        portal_id=portal_id,
        object_id=object_id,
        idempotency_key=key[:255],
        channel=channel,
        kind=kind,
        payload=json.dumps(payload, default=str, sort_keys=True),
        status="pending",
        attempts=0,
        decided_at=now,
        due_at=due_at,
        next_attempt_at=deliver_at or now,
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(outbox).values(**values).on_conflict_do_nothing()
    return conn.execute(stmt.returning(outbox.c.id)).first() is not None


def _claim(engine: Engine, channel: str, now: datetime, limit: int) -> list[OutboxItem]:
    due = and_(
        outbox.c.channel == channel,
        outbox.c.status == "pending",
        or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
    )
    with write_transaction(engine, background=True) as conn:
        query = select(outbox).where(due).order_by(outbox.c.next_attempt_at).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return []
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_([r.id for r in rows]))
            .values(attempts=outbox.c.attempts + 1, next_attempt_at=now + LEASE)
        )
    return [
        OutboxItem(
            id=r.id,
            lead_id=r.lead_id,
            portal_id=r.portal_id,
            object_id=r.object_id,
            idempotency_key=r.idempotency_key,
            channel=r.channel,
            kind=r.kind,
            payload=json.loads(r.payload),
            attempts=r.attempts + 1,
            result=json.loads(r.result) if r.result else None,
        )
        for r in rows
    ]


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """Exponential backoff with jitter, at least what the remote asked for."""
    base = min(600.0, 2.0 ** min(attempts, 10))
    seconds = max(retry_after or 0.0, random.uniform(base / 2, base))
    return timedelta(seconds=seconds)


def _finish(engine: Engine, item: OutboxItem, now: datetime, **values: Any) -> None:
    """Record the outcome, only if our claim is still the latest (attempts unchanged)."""
    with write_transaction(engine, background=True) as conn:
        done = conn.execute(
            update(outbox)
            .where(outbox.c.id == item.id, outbox.c.attempts == item.attempts)
            .values(**values)
        ).rowcount
    if not done:
        log.warning("outbox %s: lease lost to another worker; its outcome wins", item.id)


def deliver_due(
    engine: Engine,
    deliverer: Deliverer,
    *,
    now: datetime,
    limit: int = 100,
    clock: Clock | None = None,
) -> tuple[int, int]:
    """Deliver up to `limit` due rows of the deliverer's channel; return (sent, failed).

    Rows are claimed CLAIM_CHUNK at a time, so a slow deliverer (Slack paces a channel at about
    one message a second) never holds a claim much longer than it needs: another replica can
    only take over a row whose lease really expired. Pass `clock` for long runs, so each chunk's
    lease is measured from when it is claimed, not from when the run started.
    """
    sent = failed = 0
    remaining = limit
    while remaining > 0:
        if clock is not None:  # a long run: each chunk's lease starts when it is claimed
            now = clock.now()
        items = _claim(engine, deliverer.channel, now, min(CLAIM_CHUNK, remaining))
        if not items:
            break
        remaining -= len(items)
        for item in items:
            outcome = _deliver_one(engine, deliverer, item, now)
            sent += outcome == "sent"
            failed += outcome == "failed"
    return sent, failed


def _deliver_one(engine: Engine, deliverer: Deliverer, item: OutboxItem, now: datetime) -> str:
    """Deliver one claimed row and record the outcome: "sent", "failed" (for good) or "retry"."""
    try:
        try:
            result = deliverer.deliver(item)
        except DeliveryError:
            raise
        except Exception as unexpected:  # a deliverer bug must not wedge the row or its chunk
            log.exception("outbox %s (%s): unexpected error in delivery", item.id, item.kind)
            raise DeliveryError(f"unexpected: {unexpected!r}", permanent=False) from unexpected
    except DeliveryError as exc:
        progress = exc.result or item.result
        keep = json.dumps(progress) if progress else None
        if exc.permanent or item.attempts >= MAX_ATTEMPTS:
            log.error("outbox %s (%s) failed for good: %s", item.id, item.kind, exc)
            _finish(
                engine,
                item,
                now,
                status="failed",
                error=str(exc)[:2000],
                result=keep,
                next_attempt_at=None,
            )
            return "failed"
        log.warning("outbox %s (%s) will retry: %s", item.id, item.kind, exc)
        _finish(
            engine,
            item,
            now,
            error=str(exc)[:2000],
            result=keep,
            next_attempt_at=now + backoff(item.attempts, exc.retry_after),
        )
        return "retry"
    _finish(
        engine,
        item,
        now,
        status="sent",
        sent_at=now,
        error=None,
        result=json.dumps(result, default=str),
        next_attempt_at=None,
    )
    return "sent"


def record_progress(engine: Engine, item_id: int, result: Mapping[str, Any]) -> None:
    """Persist partial progress (e.g. a Slack ts) before a step that might time out."""
    with write_transaction(engine, background=True) as conn:
        conn.execute(
            update(outbox).where(outbox.c.id == item_id).values(result=json.dumps(dict(result)))
        )


def cancel(conn: Connection, lead_id: int, kinds: Iterable[str] | None = None) -> int:
    """Cancel a lead's undelivered rows (e.g. the ladder stopped) in the caller's transaction."""
    cond = and_(outbox.c.lead_id == lead_id, outbox.c.status == "pending")
    if kinds is not None:
        cond = and_(cond, outbox.c.kind.in_(list(kinds)))
    return conn.execute(update(outbox).where(cond).values(status="cancelled")).rowcount


def pending_messages(conn: Connection, lead_ids: Iterable[int]) -> dict[int, list[Any]]:
    """The undelivered Slack rows of these leads (what a decision may withdraw or re-target)."""
    ids = sorted(set(lead_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(outbox.c.id, outbox.c.lead_id, outbox.c.kind, outbox.c.step, outbox.c.recipient)
        .where(outbox.c.lead_id.in_(ids), outbox.c.status == "pending", outbox.c.channel == "slack")
        .order_by(outbox.c.id)
    ).all()
    out: dict[int, list[Any]] = {}
    for r in rows:
        out.setdefault(r.lead_id, []).append(r)
    return out


def withdraw(conn: Connection, reasons: Mapping[int, str]) -> int:
    """Cancel undelivered rows (a decision found them outdated), keeping why in `error`."""
    done = 0
    for row_id, why in reasons.items():
        done += conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id, outbox.c.status == "pending")
            .values(status="cancelled", error=f"withdrawn: {why}"[:2000], next_attempt_at=None)
        ).rowcount
    return done
