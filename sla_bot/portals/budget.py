"""HubSpot's request budget, shared by every worker process through the database.

HubSpot counts requests per portal (OAuth: 110 per 10 s per installing portal; private apps 100
to 250 per 10 s) and, separately, search requests (5 per second). A limiter in each process
would let N workers spend N budgets, so a budget of N requests per window is N rows ("slots")
of ``hubspot_rate_slots`` per (portal, bucket):

* a request takes a slot whose ``busy_until`` has passed (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL; SQLite has one writer) and marks it busy for ``window + HOLD`` seconds;
* when the response is back, the slot stays busy for one more ``window`` from *then*.

So two requests on one slot *arrive* at HubSpot at least one window apart, whatever the network
and scheduling delays, and no window ever holds more than N arrivals, across all processes. A
crashed process's slot frees itself after ``window + HOLD``. A 429 pauses every slot of the
bucket. PostgreSQL supplies the time (``clock_timestamp()``), so workers on several machines
share one clock; SQLite runs on one machine and uses the process's wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import hubspot_rate_slots as slots

HOLD = 30.0  # longer than any request may take (connect + read timeouts)
POLL = 0.02  # a waiter re-checks at least this often when every free slot is being taken


class SharedBudget:
    """At most ``max_calls`` arrivals in any ``window`` seconds for one (portal, bucket)."""

    def __init__(
        self,
        engine: Engine,
        portal_id: int,
        bucket: str,
        max_calls: int,
        window: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if max_calls < 1 or window <= 0:
            raise ValueError("a budget needs max_calls >= 1 and window > 0")
        self.engine, self.portal_id, self.bucket = engine, portal_id, bucket
        self.max_calls, self.window = max_calls, float(window)
        self._sleep, self._wall = sleep, wall
        self._pg = engine.dialect.name == "postgresql"
        self._ready = False
        self.waited = 0.0  # seconds spent waiting for a slot (for benches and metrics)

    def __repr__(self) -> str:
        return f"SharedBudget({self.portal_id}, {self.bucket!r}, {self.max_calls}/{self.window}s)"

    # -- RateLimiter protocol -----------------------------------------------------------------

    def acquire(self) -> tuple[int, float]:
        """Block until a slot is free; the grant (slot, busy_until written) for `release`."""
        if not self._ready:
            self._create_slots()
        while True:
            grant, wait = self._take()
            if grant is not None:
                return grant
            wait = min(max(wait, POLL), self.window)
            self.waited += wait
            self._sleep(wait)

    def release(self, grant: Any) -> None:
        """The response is back: the slot stays busy one window from now (if still ours)."""
        slot, held = grant
        with self._transaction() as conn:
            now = self._now_sql()
            conn.execute(
                update(slots)
                .where(self._mine(), slots.c.slot == slot, slots.c.busy_until == held)
                .values(busy_until=now + self.window)
            )

    def pause(self, seconds: float) -> None:
        """HubSpot answered 429: no slot of this bucket is used for `seconds`."""
        if seconds <= 0:
            return
        if not self._ready:
            self._create_slots()
        with self._transaction() as conn:
            until = self._now_sql() + seconds
            conn.execute(
                update(slots)
                .where(self._mine())
                .values(
                    busy_until=case((slots.c.busy_until < until, until), else_=slots.c.busy_until)
                )
            )

    # -- internals ----------------------------------------------------------------------------

    def _mine(self) -> Any:
        return and_(slots.c.portal_id == self.portal_id, slots.c.bucket == self.bucket)

    def _now_sql(self) -> Any:
        if self._pg:
            return func.extract("epoch", func.clock_timestamp())
        return self._wall()

    def _transaction(self) -> Any:
        if self._pg:
            return self.engine.begin()
        return write_transaction(self.engine, background=True)

    def _create_slots(self) -> None:
        insert = (postgresql if self._pg else sqlite).insert
        rows = [
            {"portal_id": self.portal_id, "bucket": self.bucket, "slot": i, "busy_until": 0.0}
            for i in range(self.max_calls)
        ]
        with self._transaction() as conn:
            conn.execute(insert(slots).values(rows).on_conflict_do_nothing())
        self._ready = True

    def _take(self) -> tuple[tuple[int, float] | None, float]:
        with self._transaction() as conn:
            return self._take_in(conn)

    def _take_in(self, conn: Connection) -> tuple[tuple[int, float] | None, float]:
        query = (
            select(slots.c.slot, slots.c.busy_until, self._now_column())
            .where(self._mine(), slots.c.slot < self.max_calls)
            .order_by(slots.c.busy_until)
            .limit(1)
        )
        if self._pg:
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is None:  # every slot is being taken by someone else right now
            return None, POLL
        now = float(row.now)
        if row.busy_until > now:
            return None, row.busy_until - now
        held = now + self.window + HOLD
        conn.execute(
            update(slots).where(self._mine(), slots.c.slot == row.slot).values(busy_until=held)
        )
        return (row.slot, held), 0.0

    def _now_column(self) -> Any:
        if self._pg:
            return func.extract("epoch", func.clock_timestamp()).label("now")
        from sqlalchemy import literal

        return literal(self._wall()).label("now")
