"""deliver_parallel ends when there is nothing left to do, however many threads look for work."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.outbox import DeliveryError, OutboxItem, deliver_parallel, enqueue

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


class AlwaysLater:
    """A remote that answers "try again later" (the row's retry falls beyond this run)."""

    channel = "log"

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
        raise DeliveryError("busy", permanent=False, retry_after=60)


class Sleeps:
    """Counts idle polls; a run that never ends fails the test instead of hanging it."""

    def __init__(self, limit: int) -> None:
        self.count, self.limit = 0, limit
        self.lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self.lock:
            self.count += 1
            if self.count > self.limit:
                raise RuntimeError("deliver_parallel keeps polling with nothing in progress")
        threading.Event().wait(0.001)


def test_idle_threads_do_not_keep_each_other_polling(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        for n in range(20):
            enqueue(
                conn, key=f"k{n}", channel="log", kind="nudge", payload={}, portal_id=1, now=NOW
            )
    remote, sleeps = AlwaysLater(), Sleeps(limit=2_000)
    got = deliver_parallel(engine, remote, now=NOW, workers=16, batch=5, sleep=sleeps)
    assert got == (0, 0)
    assert remote.calls == 20  # every row tried once; its retry is not due in this run
    # Threads that found nothing only wait for calls in progress; once none is, they stop.
    assert sleeps.count <= 16 * 20
