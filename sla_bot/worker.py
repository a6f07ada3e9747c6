"""The background worker: one APScheduler ticker over our own tables, never one job per lead.

Each job runs at most one instance per process (`max_instances=1`, `coalesce=True`); several
worker processes coordinate through the database (row locks), not through APScheduler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from sla_bot import metrics, metrics_store, retention
from sla_bot.db.engine import checkpoint
from sla_bot.heartbeat import Heartbeat, wall_now
from sla_bot.reconcile import hubspot_jobs
from sla_bot.services import Services
from sla_bot.splitter import split_pending

log = logging.getLogger(__name__)
METRICS_INTERVAL = 5.0  # heartbeat and buffered counters; alerts allow several missed beats
DIGESTS_INTERVAL = 30.0  # a digest due at 08:30 is enqueued by 08:30:30


def split_once(services: Services, stop: threading.Event | None = None) -> None:
    """Split every pending batch (in chunks) so a backlog drains within one tick; a shutdown
    (`stop`) ends it between chunks."""
    while stop is None or not stop.is_set():
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
    """The holder logs loads and refusals once per instance; this process is the one that
    routes leads, so it also says when new rules apply to them. The gauge is per process."""
    if services.rules is not None:
        if services.rules.reload_if_changed():
            log.info("rules %s now in force for new leads", services.rules.current().version)
        metrics.RULES_VALID.set(0 if services.rules.errors else 1)


def checkpoint_wal(services: Services) -> None:
    checkpoint(services.engine)


def report_metrics(services: Services, beat: Heartbeat) -> None:
    """The worker is alive, and what it counted outside transactions reaches /metrics."""
    beat.beat(services.engine, now=wall_now())  # liveness is wall time, whatever the clock
    metrics_store.BUFFER.flush(services.engine, now=services.clock.now())


def plan_digests(services: Services) -> None:
    """Weekly scorecards and the marketing digest, enqueued once per period when due."""
    from sla_bot.digests.plan import tick

    tick(services)


def slack_deliverer(services: Services) -> Any:
    """Who delivers "slack" outbox rows: the console notifier until Slack is configured."""
    from sla_bot.log_deliverer import LogDeliverer

    settings = services.settings
    if settings.slack_bot_token is None:
        return LogDeliverer()
    from integrations.slack.client import make_client
    from integrations.slack.deliverer import SlackDeliverer
    from integrations.slack.ops import OpsReporter

    client = make_client(
        settings.slack_bot_token.get_secret_value(),
        settings.slack_api_base_url,
        timeout=settings.slack_timeout_seconds,
    )
    ops = OpsReporter(client, settings.slack_ops_channel, clock=services.clock)
    return SlackDeliverer(
        client, services.engine, clock=services.clock, rules=services.rules, ops=ops
    )


def jobs(
    services: Services, beat: Heartbeat | None = None, stop: threading.Event | None = None
) -> list[tuple[str, Callable[[], None], float]]:
    """(name, callable, interval seconds) for every periodic job.

    One set of per-portal HubSpot clients serves the engine's fetches, the write-back and
    reconciliation; each portal's budget is shared with every other worker through the database.
    """
    from sla_bot.fetching import referenced_properties
    from sla_bot.worker_jobs import engine_jobs, hubspot_clients

    interval = services.settings.worker_interval_seconds
    client = hubspot_clients(services)
    beat = beat or Heartbeat.for_this_process()
    every = services.settings.retention_interval_seconds
    pruning = [("retention", retention.job(services, stop), every)] if every > 0 else []

    def properties() -> list[str]:
        if services.rules is None or not services.rules.loaded:
            return []
        ruleset = services.rules.current().ruleset
        return referenced_properties(ruleset, services.settings.attribution.properties)

    return [
        ("split-webhook-batches", lambda: split_once(services, stop), min(interval, 0.5)),
        ("reload-rules", lambda: reload_rules(services), 2.0),
        ("checkpoint-sqlite-wal", lambda: checkpoint_wal(services), 1.0),
        ("report-metrics", lambda: report_metrics(services, beat), METRICS_INTERVAL),
        ("plan-digests", lambda: plan_digests(services), DIGESTS_INTERVAL),
        *pruning,
        # HubSpot write-back delivery + reconciliation (sla_bot.reconcile); none without a token.
        *hubspot_jobs(services, properties=properties, client=client),
        *engine_jobs(services, metrics_store.Counted(slack_deliverer(services)), client, stop),
    ]


def run(services: Services, stop: threading.Event) -> None:
    """Run until `stop` is set (SIGTERM); finish the running jobs before returning."""
    scheduler = BackgroundScheduler(timezone="UTC")
    beat = Heartbeat.for_this_process()
    beat.beat(services.engine, now=wall_now())  # ready at once, not one interval later
    planned = jobs(services, beat, stop)
    for name, func, seconds in planned:
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
    log.info("worker started: %s", ", ".join(name for name, _, _ in planned))
    stop.wait()
    log.info("worker stopping: waiting for running jobs")
    scheduler.shutdown(wait=True)
    log.info("worker stopped")
