"""Pacing: about one message per second per conversation, different conversations in parallel.

Slack allows chat.postMessage "one message per second per channel" with short bursts, per
workspace, whatever number of processes post. `SharedChannelPacer` (the worker's) hands out
per-conversation time slots through the database (`slack_pacing`, one atomic upsert per post),
so every worker process draws on the same slots; `ChannelPacer` does the same in memory for one
process (tests). Both sleep outside any lock or transaction, so a burst to one channel is spread
out while DMs to other reps are not held up. `deliver_parallel` runs several `deliver_due` loops
in threads; each claims one row at a time (leased, the lease kept alive while it waits), so one
busy channel or one hung call delays only the row it belongs to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine

from sla_bot.clock import Clock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import slack_pacing
from sla_bot.outbox import Deliverer, OutboxItem, deliver_due


class ChannelPacer:
    def __init__(
        self,
        interval: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._monotonic, self._sleep = monotonic, sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self.slots: list[tuple[str, float]] = []  # (channel, time granted): for tests and metrics

    def wait(self, channel: str) -> float:
        """Block until `channel` may get its next message; return the seconds waited."""
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next.get(channel, now))
            self._next[channel] = slot + self.interval
            self.slots.append((channel, slot))
            if len(self.slots) > 10_000:
                del self.slots[:5_000]
            if len(self._next) > 10_000:  # forget channels idle for a while
                self._next = {c: t for c, t in self._next.items() if t > now}
        waited = slot - now
        if waited > 0:
            self._sleep(waited)
        return waited


class SharedChannelPacer:
    """Per-conversation slots shared by every process on the database (wall-clock seconds)."""

    def __init__(
        self,
        engine: Engine,
        interval: float = 1.0,
        *,
        time_fn: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine, self.interval = engine, interval
        self._time, self._sleep = time_fn, sleep
        self.slots: list[tuple[str, float]] = []  # (channel, slot granted here): tests, metrics
        self._lock = threading.Lock()

    def take(self, channel: str, now: float) -> float:
        """Reserve the conversation's next slot (at or after `now`) and return it."""
        from sqlalchemy.dialects import postgresql, sqlite

        with write_transaction(self.engine, background=True) as conn:
            pg = conn.dialect.name == "postgresql"
            insert = (postgresql if pg else sqlite).insert(slack_pacing)
            later = (func.greatest if pg else func.max)(now, slack_pacing.c.next_slot)
            stmt = insert.values(channel=channel[:128], next_slot=now + self.interval)
            stmt = stmt.on_conflict_do_update(
                index_elements=[slack_pacing.c.channel],
                set_={"next_slot": later + self.interval},
            ).returning(slack_pacing.c.next_slot)
            after = float(conn.execute(stmt).scalar_one())
        slot = after - self.interval
        with self._lock:
            self.slots.append((channel, slot))
            if len(self.slots) > 10_000:
                del self.slots[:5_000]
        return slot

    def wait(self, channel: str) -> float:
        """Block until `channel` may get its next message; return the seconds waited."""
        now = self._time()
        waited = self.take(channel, now) - now
        if waited > 0:
            self._sleep(waited)
        return waited


class _Counting:
    """Counts this thread's attempts, so a batch of retried rows does not end the loop."""

    def __init__(self, inner: Deliverer) -> None:
        self.inner, self.channel = inner, inner.channel
        self.local = threading.local()

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        self.local.n += 1
        return self.inner.deliver(item)

    def settled(self, item: OutboxItem, outcome: str) -> None:
        settled = getattr(self.inner, "settled", None)
        if settled is not None:
            settled(item, outcome)


def deliver_parallel(
    engine: Engine,
    deliverer: Deliverer,
    *,
    now: datetime,
    workers: int = 16,
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
    busy = [0]
    lock = threading.Lock()
    counting = _Counting(deliverer)

    def loop() -> None:
        while True:
            with lock:
                if totals[2] >= limit:
                    return
                busy[0] += 1
            counting.local.n = 0
            sent = failed = 0
            try:
                sent, failed = deliver_due(engine, counting, now=now, limit=batch, clock=clock)
            finally:
                with lock:
                    busy[0] -= 1
                    totals[0] += sent
                    totals[1] += failed
                    totals[2] += counting.local.n
            if counting.local.n == 0:  # nothing to claim right now
                with lock:
                    if busy[0] == 0:
                        return
                sleep(poll)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-deliver") as pool:
        for future in [pool.submit(loop) for _ in range(workers)]:
            future.result()
    return totals[0], totals[1]
