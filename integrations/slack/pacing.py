"""Pacing: about one message per second per conversation, different conversations in parallel.

Slack allows chat.postMessage "one message per second per channel" with short bursts, per
workspace, whatever number of processes post. `SharedChannelPacer` (the worker's) hands out
per-conversation time slots through the database (`slack_pacing`, one atomic upsert per post),
so every worker process draws on the same slots; `ChannelPacer` does the same in memory for one
process (tests). Both sleep outside any lock or transaction, so a burst to one channel is spread
out while DMs to other reps are not held up. The worker delivers with `sla_bot.outbox.
deliver_parallel`: threads that claim one row at a time (leased, the lease kept alive while it
waits), so one busy channel or one hung call delays only the row it belongs to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import func
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import slack_pacing

MAX_WAIT = 2.0  # a reserved slot further away than this: the row waits in the outbox, not a thread
# A kept slot this far in the past when its row comes back is given up for a new one: the
# conversation's later slots are taken, and posting now would land on top of one of them.
STALE_SLOT = 0.5


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

    def now(self) -> float:
        return self._monotonic()

    def reserve(self, channel: str) -> float:
        """Take `channel`'s next slot and return when it is (this pacer's clock)."""
        return self.take(channel, self._monotonic())

    def take(self, channel: str, now: float) -> float:
        """Take `channel`'s next slot at or after `now` (this pacer's clock) and return it."""
        with self._lock:
            slot = max(now, self._next.get(channel, now))
            self._next[channel] = slot + self.interval
            self.slots.append((channel, slot))
            if len(self.slots) > 10_000:
                del self.slots[:5_000]
            if len(self._next) > 10_000:  # forget channels idle for a while
                present = self._monotonic()
                self._next = {c: t for c, t in self._next.items() if t > present}
        return slot

    def sleep_until(self, slot: float) -> float:
        waited = slot - self._monotonic()
        if waited > 0:
            self._sleep(waited)
        return waited

    def wait(self, channel: str) -> float:
        """Block until `channel` may get its next message; return the seconds waited."""
        return self.sleep_until(self.reserve(channel))


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

    def now(self) -> float:
        return self._time()

    def reserve(self, channel: str) -> float:
        """Take `channel`'s next slot and return when it is (wall-clock epoch seconds)."""
        return self.take(channel, self._time())

    def sleep_until(self, slot: float) -> float:
        waited = slot - self._time()
        if waited > 0:
            self._sleep(waited)
        return waited

    def wait(self, channel: str) -> float:
        """Block until `channel` may get its next message; return the seconds waited."""
        return self.sleep_until(self.reserve(channel))
