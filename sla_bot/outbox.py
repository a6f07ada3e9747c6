"""The outbox: decided side effects, delivered by channel-specific deliverers.

Deciding and delivering are separate steps (healthchecks' Flip, a transactional outbox). The
engine inserts rows in the same transaction as the lead change that decided them; the unique
`idempotency_key` makes deciding a step twice impossible. Delivery claims one row at a time with
a short lease (`next_attempt_at = now + LEASE`, 10 s; `attempts + 1` is the claim's fencing
token, see sla_bot.leases), calls the deliverer outside any transaction, then records the
outcome only if the token still holds. The deliverer fences each side effect (`item.fence()`
right before the remote call: the lease is renewed and the recorded result re-read in one
transaction) and a keeper thread renews the lease while the call runs. A worker that dies
mid-send stops renewing; within LEASE the row is claimed again, so deliverers must still be
idempotent: they get the previous attempt's `result` (e.g. a Slack `ts` recorded before a
timeout) and check before sending twice. A worker whose lease was taken over never sends after
that, never records, and does not count the row as sent.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Select, and_, select, update
from sqlalchemy.engine import Engine

from sla_bot.clock import Clock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import outbox
from sla_bot.leases import KEEPER, Lease, LeaseLost, lease_length

log = logging.getLogger(__name__)

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
    attempts: int  # including the current one: the claim's fencing token
    result: dict[str, Any] | None  # what an earlier attempt recorded, if anything
    lease: Lease | None = field(default=None, compare=False, repr=False)

    def fence(self, progress: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Call right before a side effect: raises LeaseLost unless this claim still holds
        (renewing it, and recording `progress` if given); returns the row's recorded result as
        it is now."""
        if self.lease is None:
            return dict(progress) if progress is not None else self.result
        return self.lease.fence(progress)

    def now(self) -> datetime:
        """The time the outbox delivers at (injected in tests)."""
        return self.lease.now() if self.lease is not None else datetime.now(UTC)


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


class Deferred(Exception):
    """Not attempted: the remote has no room for this row soon (e.g. a Slack channel's posting
    slots are taken for the next seconds). The row waits `delay` seconds without counting an
    attempt, and the thread is free for rows that can go now (no head-of-line blocking)."""

    def __init__(self, delay: float, *, result: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"deferred {delay:.1f}s")
        self.delay = max(0.0, delay)
        self.result = dict(result) if result else None  # e.g. the slot reserved for it


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


def _claim(
    engine: Engine, channel: str, now: datetime, clock: Clock | None = None
) -> OutboxItem | None:
    """Claim the next due row for this worker alone: one row, so a slow or hung call holds up
    only its own row, never a batch behind it."""
    length = lease_length(clock)
    with write_transaction(engine, background=True) as conn:
        r = conn.execute(claim_query(conn.dialect.name, channel, now)).first()
        if r is None:
            return None
        conn.execute(
            update(outbox)
            .where(outbox.c.id == r.id)
            .values(attempts=outbox.c.attempts + 1, next_attempt_at=now + length)
        )
    lease = Lease(
        engine, r.id, r.attempts + 1, clock.now if clock is not None else lambda: now, length
    )
    return OutboxItem(
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
        lease=lease,
    )


def claim_query(dialect: str, channel: str, now: datetime) -> Select[Any]:
    """The next due row of `channel`, locked (skipping rows other workers hold on PostgreSQL).

    An index range on ix_outbox_pending (channel, next_attempt_at, id), read in order: the
    first unlocked row ends the scan, however many are due (a pending row always has a
    next_attempt_at; migration 0016). An OR with IS NULL here made every claim sort them all.
    """
    due = and_(
        outbox.c.channel == channel,
        outbox.c.status == "pending",
        outbox.c.next_attempt_at <= now,
    )
    query = select(outbox).where(due).order_by(outbox.c.next_attempt_at, outbox.c.id).limit(1)
    return query.with_for_update(skip_locked=True) if dialect == "postgresql" else query


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """Exponential backoff with jitter, at least what the remote asked for."""
    base = min(600.0, 2.0 ** min(attempts, 10))
    seconds = max(retry_after or 0.0, random.uniform(base / 2, base))
    return timedelta(seconds=seconds)


def _finish(item: OutboxItem, **values: Any) -> bool:
    """Record the outcome, only if our claim is still the latest; False if it was lost."""
    assert item.lease is not None
    try:
        item.lease.record(**values)
    except LeaseLost:
        log.warning("outbox %s: lease lost to another worker; its outcome wins", item.id)
        return False
    return True


def deliver_due(
    engine: Engine,
    deliverer: Deliverer,
    *,
    now: datetime,
    limit: int = 100,
    clock: Clock | None = None,
) -> tuple[int, int]:
    """Deliver up to `limit` due rows of the deliverer's channel; return (sent, failed).

    Rows are claimed one at a time. Pass `clock` for real runs: each claim's lease is measured
    from when it is taken, and a keeper thread renews it while the deliverer works (without a
    clock, time stands still at `now`, as in tests that step time themselves).
    """
    sent = failed = 0
    for _ in range(limit):
        if clock is not None:
            now = clock.now()
        item = _claim(engine, deliverer.channel, now, clock)
        if item is None:
            break
        if clock is not None and item.lease is not None:
            KEEPER.add(item.lease)
        try:
            outcome = _deliver_one(deliverer, item, clock.now if clock is not None else None, now)
        finally:
            if item.lease is not None:
                KEEPER.remove(item.lease)
        settled = getattr(deliverer, "settled", None)
        if settled is not None:
            settled(item, outcome)
        sent += outcome == "sent"
        failed += outcome == "failed"
    return sent, failed


class _Counting:
    """Counts this thread's attempts (so a batch of retried rows does not end the loop) and the
    calls in progress across threads (what an idle thread keeps waiting for)."""

    def __init__(self, inner: Deliverer) -> None:
        self.inner, self.channel = inner, inner.channel
        self.local = threading.local()
        self.in_call = 0
        self._lock = threading.Lock()

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        self.local.n += 1
        with self._lock:
            self.in_call += 1
        try:
            return self.inner.deliver(item)
        finally:
            with self._lock:
                self.in_call -= 1

    def settled(self, item: OutboxItem, outcome: str) -> None:
        settled = getattr(self.inner, "settled", None)
        if settled is not None:
            settled(item, outcome)


def deliver_parallel(
    engine: Engine,
    deliverer: Deliverer,
    *,
    now: datetime,
    workers: int = 8,
    batch: int = 5,
    limit: int = 500,
    clock: Clock | None = None,
    poll: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, int]:
    """Deliver due rows of `deliverer.channel` with `workers` threads; return (sent, failed).

    With `clock`, every claim reads the time afresh, so leases stay valid through a long run.
    A thread that finds nothing due keeps looking every `poll` seconds while another thread is
    still in a call: a hung call holds up only its own row, not the retries that come due
    meanwhile. The run ends when no thread has anything to do.
    """
    totals = [0, 0, 0]  # sent, failed, attempted
    lock = threading.Lock()
    counting = _Counting(deliverer)

    def loop() -> None:
        while True:
            with lock:
                if totals[2] >= limit:
                    return
            counting.local.n = 0
            sent = failed = 0
            try:
                sent, failed = deliver_due(engine, counting, now=now, limit=batch, clock=clock)
            finally:
                with lock:
                    totals[0] += sent
                    totals[1] += failed
                    totals[2] += counting.local.n
            if counting.local.n == 0:  # nothing to claim right now
                # Wait only while another thread is in a remote call (its retry may come due);
                # threads that merely look for work must not keep each other waiting forever.
                if counting.in_call == 0:
                    return
                sleep(poll)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
        for future in [pool.submit(loop) for _ in range(workers)]:
            future.result()
    return totals[0], totals[1]


def _deliver_one(
    deliverer: Deliverer, item: OutboxItem, clock: Callable[[], datetime] | None, now: datetime
) -> str:
    """Deliver one claimed row and record the outcome: "sent", "failed" (for good), "retry",
    "deferred" (not attempted, due again later), or "lost" (another worker holds the row now:
    nothing recorded, nothing counted)."""
    try:
        try:
            result = deliverer.deliver(item)
        except (DeliveryError, LeaseLost, Deferred):
            raise
        except Exception as unexpected:  # a deliverer bug must not wedge the row or its chunk
            log.exception("outbox %s (%s): unexpected error in delivery", item.id, item.kind)
            raise DeliveryError(f"unexpected: {unexpected!r}", permanent=False) from unexpected
    except LeaseLost:
        log.warning("outbox %s (%s): lease lost before sending; not sent here", item.id, item.kind)
        return "lost"
    except Deferred as later:
        at = clock() if clock is not None else now
        # Give the claim's attempt back: the claim after this one takes the same token again,
        # which is safe because this claim ends here (its lease cannot be renewed any more).
        keep = later.result if later.result is not None else item.result
        done = _finish(
            item,
            attempts=outbox.c.attempts - 1,
            next_attempt_at=at + timedelta(seconds=later.delay),
            result=json.dumps(keep) if keep else None,
        )
        return "deferred" if done else "lost"
    except DeliveryError as exc:
        at = clock() if clock is not None else now
        progress = exc.result or item.result
        keep = json.dumps(progress) if progress else None
        if exc.permanent or item.attempts >= MAX_ATTEMPTS:
            log.error("outbox %s (%s) failed for good: %s", item.id, item.kind, exc)
            done = _finish(
                item, status="failed", error=str(exc)[:2000], result=keep, next_attempt_at=None
            )
            return "failed" if done else "lost"
        log.warning("outbox %s (%s) will retry: %s", item.id, item.kind, exc)
        done = _finish(
            item,
            error=str(exc)[:2000],
            result=keep,
            next_attempt_at=at + backoff(item.attempts, exc.retry_after),
        )
        return "retry" if done else "lost"
    at = clock() if clock is not None else now
    done = _finish(
        item,
        status="sent",
        sent_at=at,
        error=None,
        result=json.dumps(result, default=str),
        next_attempt_at=None,
    )
    return "sent" if done else "lost"


def record_progress(engine: Engine, item: OutboxItem | int, result: Mapping[str, Any]) -> None:
    """Persist partial progress (e.g. a Slack ts) before a step that might time out; with a
    claimed item, only while its lease holds (else LeaseLost)."""
    value = json.dumps(dict(result))
    if isinstance(item, OutboxItem) and item.lease is not None:
        item.lease.record(result=value)
        return
    item_id = item.id if isinstance(item, OutboxItem) else item
    with write_transaction(engine, background=True) as conn:
        conn.execute(update(outbox).where(outbox.c.id == item_id).values(result=value))


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
