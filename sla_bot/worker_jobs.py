"""The engine's periodic worker jobs: apply events, fetch contacts, sweep, deliver slack rows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sla_bot.engine.apply import apply_pending
from sla_bot.engine.sweep import sweep_due
from sla_bot.outbox import deliver_parallel
from sla_bot.services import Services

log = logging.getLogger(__name__)


def hubspot_clients(services: Services) -> Any:
    """Per-portal HubSpot clients when any portal can have credentials, else None (events carry
    what we know). One registry per worker: fetch, write-back and reconciliation share it."""
    if not services.settings.hubspot_outbound:
        return None
    from sla_bot.portals.registry import PortalClients

    return PortalClients(services.engine, services.settings, services.clock)


def engine_jobs(
    services: Services, deliverer: Any, client: Any = None, stop: threading.Event | None = None
) -> list[tuple[str, Callable[[], None], float]]:
    """(name, callable, seconds) for the engine; `client`: PortalClients, a HubSpotClient or
    None. Jobs that drain a backlog in several passes stop between passes once `stop` is set,
    so a shutdown waits for one pass, not for the whole backlog."""
    stopping = stop.is_set if stop is not None else (lambda: False)
    interval = services.settings.worker_interval_seconds
    fetcher = None
    if client is not None:
        from sla_bot.fetching import Fetcher

        fetcher = Fetcher(
            client,
            portal_id=services.settings.hubspot_portal_id,
            extra_properties=services.settings.attribution.properties,
        )

    def apply_events() -> None:
        if services.rules is None:
            return
        loaded = services.rules.current()
        while not stopping():
            got = apply_pending(
                services.engine, loaded, now=services.clock.now(), fetching=fetcher is not None
            )
            if got.contacts < 200:
                return

    def fetch_contacts() -> None:
        if fetcher is not None and services.rules is not None:
            fetcher.run(services.engine, services.rules.current(), now=services.clock.now())

    def sweep() -> None:
        if services.rules is not None:
            sweep_due(
                services.engine,
                services.rules.current(),
                now=services.clock.now(),
                attribution=services.settings.attribution,
                stopping=stopping,
            )

    def deliver() -> None:
        # 16 threads, one leased row each: DMs to different reps go out in parallel while the
        # deliverer paces each conversation (through the database, for every worker process);
        # a hung Slack call holds up only its own row and thread.
        deliver_parallel(
            services.engine,
            deliverer,
            now=services.clock.now(),
            workers=16,
            batch=5,
            clock=services.clock,
        )

    jobs = [
        ("apply-events", apply_events, min(interval, 0.5)),
        ("sla-sweep", sweep, interval),
        ("deliver-slack", deliver, interval),
    ]
    if fetcher is not None:
        jobs.append(("fetch-contacts", fetch_contacts, min(interval, 1.0)))
    return jobs
