"""Outbox leases as fencing tokens: a side effect happens only while its claim still holds.

A claim increments the row's `attempts`; that number is the claim's token. Every write the
holder makes (progress, outcome) and the fence before every side effect is a compare-and-set on
`attempts == token` in one transaction, so a worker whose lease ran out and was taken over can
neither send nor record: it gets `LeaseLost` and walks away. Leases are short (`LEASE`) and kept
alive by a keeper thread (`LeaseKeeper`) while the row is being delivered, so a crashed worker's
rows are free again within seconds, while a slow call (a hung HTTP request) keeps its row as
long as its process lives.

The one window left: between the fence and the remote call the holder could stall for longer
than the lease (a process frozen for seconds). The deliverers close it where the remote allows
(search for the effect before repeating it); see docs/architecture.md "Delivery guarantees".
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import outbox

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=10)
RENEW_EVERY = 3.0  # real seconds between renewals: three chances before the lease runs out


def lease_length(clock: object) -> timedelta:
    """LEASE in the clock's time: a clock running N times faster than real time (the demo's
    `speed`) gets an N times longer lease, so it still lasts LEASE of real time."""
    speed = getattr(clock, "speed", 1.0)
    return LEASE * (float(speed) if isinstance(speed, int | float) and speed > 1 else 1.0)


class LeaseLost(Exception):
    """Another worker holds this row now: whatever this one was about to do, it must not."""


class Lease:
    """One claimed row: its id and token (`attempts` at claim time)."""

    def __init__(
        self,
        engine: Engine,
        row_id: int,
        token: int,
        now: Callable[[], datetime],
        length: timedelta = LEASE,
    ) -> None:
        self.engine, self.row_id, self.token, self._now = engine, row_id, token, now
        self.length = length
        self.lost = threading.Event()

    def _held(self) -> Any:
        return (
            (outbox.c.id == self.row_id)
            & (outbox.c.attempts == self.token)
            & (outbox.c.status == "pending")
        )

    def renew(self) -> bool:
        """Extend the lease; False (and `lost` set) when another claim has replaced ours."""
        with write_transaction(self.engine, background=True) as conn:
            held = conn.execute(
                update(outbox).where(self._held()).values(next_attempt_at=self._now() + self.length)
            ).rowcount
        if not held:
            self.lost.set()
        return bool(held)

    def now(self) -> datetime:
        """The time the outbox runs on (a test's frozen clock, else the system clock)."""
        return self._now()

    def fence(self, progress: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Call right before a side effect: renews the lease (and records `progress`, e.g. "an
        attempt is sending since t") and re-reads the row's recorded result in one
        transaction, or raises LeaseLost."""
        if self.lost.is_set():
            raise LeaseLost(f"outbox {self.row_id}: lease {self.token} lost")
        values: dict[str, Any] = {"next_attempt_at": self._now() + self.length}
        if progress is not None:
            values["result"] = json.dumps(dict(progress), default=str)
        with write_transaction(self.engine, background=True) as conn:
            held = conn.execute(update(outbox).where(self._held()).values(**values)).rowcount
            result = conn.execute(
                select(outbox.c.result).where(outbox.c.id == self.row_id)
            ).scalar_one_or_none()
        if not held:
            self.lost.set()
            raise LeaseLost(f"outbox {self.row_id}: lease {self.token} lost")
        return json.loads(result) if result else None

    def record(self, **values: Any) -> None:
        """Write to the row only while the lease holds, else raise LeaseLost."""
        with write_transaction(self.engine, background=True) as conn:
            held = conn.execute(update(outbox).where(self._held()).values(**values)).rowcount
        if not held:
            self.lost.set()
            raise LeaseLost(f"outbox {self.row_id}: lease {self.token} lost")


class LeaseKeeper:
    """A daemon thread that renews every registered lease every RENEW_EVERY seconds.

    One per process (`KEEPER`); started on first use. A lease that cannot be renewed is marked
    lost, so the deliverer's next fence refuses at once.
    """

    def __init__(self, every: float = RENEW_EVERY) -> None:
        self.every = every
        self._leases: weakref.WeakSet[Lease] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, lease: Lease) -> None:
        with self._lock:
            self._leases.add(lease)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="outbox-lease-keeper", daemon=True
                )
                self._thread.start()

    def remove(self, lease: Lease) -> None:
        with self._lock:
            self._leases.discard(lease)

    def _run(self) -> None:
        while True:
            time.sleep(self.every)
            with self._lock:
                leases = list(self._leases)
            for lease in leases:
                try:
                    if not lease.renew():
                        log.warning("outbox %s: lease lost while delivering", lease.row_id)
                except Exception:  # noqa: BLE001 - the database is away; try again next round
                    log.warning("outbox %s: lease not renewed", lease.row_id, exc_info=True)


KEEPER = LeaseKeeper()
