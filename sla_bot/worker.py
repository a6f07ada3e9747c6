"""The background worker: one APScheduler ticker over our own tables, never one job per lead.

Each job runs at most one instance per process (`max_instances=1`, `coalesce=True`); several
worker processes coordinate through the database (row locks), not through APScheduler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from sla_bot.db.engine import checkpoint
from sla_bot.splitter import split_pending
from sla_bot.web.services import Services

log = logging.getLogger(__name__)


def split_once(services: Services) -> None:
    """Split every pending batch (in chunks) so a backlog drains within one tick."""
    while True:
        result = split_pending(services.engine, now=services.clock.now())
        if result.batches:
            log.info(
                "split %d batches: %d new events, %d duplicates",
                result.batches,
                result.new,
                result.duplicates,
            )
        if result.batches < 50:
            return


def reload_rules(services: Services) -> None:
    if services.rules is not None:
        services.rules.reload_if_changed()


def checkpoint_wal(services: Services) -> None:
    checkpoint(services.engine)


def jobs(services: Services) -> list[tuple[str, Callable[[], None], float]]:
    """(name, callable, interval seconds) for every periodic job."""
    interval = services.settings.worker_interval_seconds
    return [
        ("split-webhook-batches", lambda: split_once(services), min(interval, 0.5)),
        ("reload-rules", lambda: reload_rules(services), 2.0),
        ("checkpoint-sqlite-wal", lambda: checkpoint_wal(services), 1.0),
    ]


def run(services: Services, stop: threading.Event) -> None:
    """Run until `stop` is set (SIGTERM); finish the running jobs before returning."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for name, func, seconds in jobs(services):
        scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.start()
    log.info("worker started: %s", ", ".join(name for name, _, _ in jobs(services)))
    stop.wait()
    log.info("worker stopping: waiting for running jobs")
    scheduler.shutdown(wait=True)
