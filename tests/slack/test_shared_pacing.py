"""Slack's per-channel pace (about one post a second) holds across worker processes: the slots
are handed out by the database, so N workers do not post N times faster into one channel."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine

from integrations.slack.deliverer import SlackDeliverer
from integrations.slack.pacing import SharedChannelPacer
from sla_bot.db.engine import make_engine
from tests.fixtures_slack import Waits


def test_two_worker_processes_share_each_channels_slots(engine: Engine, db_url: str) -> None:
    other = make_engine(db_url)  # the second worker process's own engine and pool
    wall = Waits()  # the wall clock both processes read; sleeping advances it
    pacers = [
        SharedChannelPacer(e, time_fn=wall.monotonic, sleep=wall.sleep) for e in (engine, other)
    ]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda n: pacers[n % 2].wait("C0SALES001"), range(8)))
        quiet = pacers[1].wait("C0QUIET001")
    finally:
        other.dispose()

    slots = sorted(slot for p in pacers for channel, slot in p.slots if channel == "C0SALES001")
    assert len(slots) == 8
    assert all(later - earlier >= 1.0 for earlier, later in zip(slots, slots[1:], strict=False))
    assert quiet == 0.0  # another conversation is not held up by this one


def test_the_worker_deliverer_paces_through_the_database(engine: Engine) -> None:
    deliverer = SlackDeliverer(None, engine, clock=None)  # type: ignore[arg-type]
    assert isinstance(deliverer.pacer, SharedChannelPacer)
