"""Reconciliation: catch up on contacts whose webhooks HubSpot never delivered.

Webhooks are at-least-once *when they arrive*; HubSpot gives up on an endpoint after retries, and
subscriptions can be paused. So a periodic job searches HubSpot for contacts modified since the
last successful sync and feeds them through the same path as webhooks: each window becomes
``webhook_batches`` rows (``source="reconcile"``) holding synthetic ``contact.sync`` events, the
splitter turns them into ``webhook_events`` (the dedupe key drops repeats) and the engine applies
them. Nothing here touches leads directly.

Window: ``[watermark - overlap, now - lag)``. The overlap re-reads the last minutes because the
search index lags writes; the lag keeps the window's end behind that index. The watermark (table
``sync_state``, job ``"reconcile"``, one row per portal) moves to the window's end only after every
batch of the window is committed, so a failure anywhere means the next run repeats the window
(stored batches are harmless repeats) and nothing is lost. The first run looks back ``lookback``.
The search API's 5 requests/s and 10,000-result cap are handled by
:meth:`HubSpotClient.search_contacts_modified_since` (search rate limiter, keyset windows).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.errors import HubSpotError
from integrations.hubspot.models import Contact
from integrations.hubspot.search import lastmodified_ms
from integrations.hubspot.writeback import HubSpotWriter
from sla_bot.db.engine import write_transaction
from sla_bot.db.locks import try_lock
from sla_bot.db.schema import sync_state, webhook_events
from sla_bot.fetching import BASE_PROPERTIES
from sla_bot.intake import store_batch
from sla_bot.metrics_store import Counted
from sla_bot.outbox import deliver_parallel
from sla_bot.portals.registry import PortalClients
from sla_bot.services import Services

log = logging.getLogger(__name__)

JOB = "reconcile"
SUBSCRIPTION_TYPE = "contact.sync"
SOURCE = "reconcile"
BATCH_SIZE = 100  # the Webhooks API never sends more per request; keep batches familiar
OVERLAP = timedelta(minutes=2)
LAG = timedelta(seconds=30)
LOOKBACK = timedelta(days=1)
DEFAULT_PROPERTIES: tuple[str, ...] = BASE_PROPERTIES  # the engine reads the same contact facts
REQUIRED_PROPERTIES = ("createdate", "lastmodifieddate", "hubspot_owner_id")
DELIVER_BATCH = 20  # write-back rows attempted per worker tick
DELIVER_THREADS = 4  # a hung HubSpot call holds up one thread, not the tick


@dataclass(frozen=True)
class ReconcileResult:
    portal_id: int
    since: datetime
    until: datetime
    found: int  # contacts HubSpot returned for the window
    stored: int  # synthetic events stored (found minus ones already known)
    batches: int  # webhook_batches rows written
    watermark: datetime | None  # after the run


def get_watermark(engine: Engine, portal_id: int, job: str = JOB) -> datetime | None:
    """The end of the last fully stored window for this portal, or None before the first run."""
    with engine.connect() as conn:
        return conn.execute(
            select(sync_state.c.watermark).where(
                sync_state.c.portal_id == portal_id, sync_state.c.job == job
            )
        ).scalar_one_or_none()


def _advance_watermark(engine: Engine, portal_id: int, to: datetime, now: datetime) -> None:
    """Move the watermark forward (never back: a slower concurrent run must not rewind it)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(sync_state).values(
        portal_id=portal_id, job=JOB, watermark=to, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[sync_state.c.portal_id, sync_state.c.job],
        set_={"watermark": stmt.excluded.watermark, "updated_at": stmt.excluded.updated_at},
        where=(sync_state.c.watermark.is_(None)) | (sync_state.c.watermark < to),
    )
    with write_transaction(engine, background=True) as conn:
        conn.execute(stmt)


def synthetic_event(portal_id: int, contact: Contact) -> dict[str, Any]:
    """One contact as a Webhooks-API-shaped ``contact.sync`` event the splitter understands."""
    return {
        "subscriptionType": SUBSCRIPTION_TYPE,
        "portalId": portal_id,
        "objectId": int(contact.id),
        "occurredAt": lastmodified_ms(contact),
        "eventId": 0,
        "subscriptionId": 0,
        "attemptNumber": 0,
        "changeSource": "RECONCILE",
        "properties": dict(contact.properties),
    }


def _known(
    engine: Engine, portal_id: int, events: Sequence[dict[str, Any]]
) -> set[tuple[int, int]]:
    """(objectId, occurredAt) pairs already split into ``webhook_events`` (overlap repeats)."""
    ids = sorted({e["objectId"] for e in events})
    with engine.connect() as conn:
        rows = conn.execute(
            select(webhook_events.c.object_id, webhook_events.c.occurred_at_ms).where(
                and_(
                    webhook_events.c.portal_id == portal_id,
                    webhook_events.c.subscription_id == 0,
                    webhook_events.c.event_id == 0,
                    webhook_events.c.property_name == "",
                    webhook_events.c.subscription_type == SUBSCRIPTION_TYPE,
                    webhook_events.c.object_id.in_(ids),
                )
            )
        ).all()
    return {(r.object_id, r.occurred_at_ms) for r in rows}


def _chunks(contacts: Iterable[Contact], portal_id: int) -> Iterable[list[dict[str, Any]]]:
    """Synthetic events in chunks of BATCH_SIZE, each (id, lastmodified) once per run."""
    seen: set[tuple[int, int]] = set()
    chunk: list[dict[str, Any]] = []
    for contact in contacts:
        if not (contact.id.isascii() and contact.id.isdigit()):
            log.warning("reconcile: skipping contact with non-numeric id %r", contact.id)
            continue
        event = synthetic_event(portal_id, contact)
        key = (event["objectId"], event["occurredAt"])
        if key in seen:
            continue
        seen.add(key)
        chunk.append(event)
        if len(chunk) == BATCH_SIZE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def reconcile_once(
    engine: Engine,
    client: HubSpotClient,
    *,
    portal_id: int,
    now: datetime,
    properties: Sequence[str] = DEFAULT_PROPERTIES,
    overlap: timedelta = OVERLAP,
    lag: timedelta = LAG,
    lookback: timedelta = LOOKBACK,
) -> ReconcileResult:
    """Store every contact modified in this run's window as synthetic events; then advance.

    Raises :class:`~integrations.hubspot.errors.HubSpotError` when HubSpot fails; the watermark
    then stays put and the next run repeats the window.
    """
    watermark = get_watermark(engine, portal_id)
    since = watermark - overlap if watermark is not None else now - lookback
    until = now - lag
    if since >= until:  # the clock went backwards, or runs are closer together than the lag
        return ReconcileResult(portal_id, since, until, 0, 0, 0, watermark)
    props = list(dict.fromkeys([*properties, *REQUIRED_PROPERTIES]))
    found = stored = batches = 0
    contacts = client.search_contacts_modified_since(since, until, props)
    for chunk in _chunks(contacts, portal_id):
        found += len(chunk)
        known = _known(engine, portal_id, chunk)
        fresh = [e for e in chunk if (e["objectId"], e["occurredAt"]) not in known]
        if not fresh:
            continue
        body = json.dumps(fresh, separators=(",", ":")).encode()
        store_batch(engine, body=body, source=SOURCE, signature_version="none", received_at=now)
        stored += len(fresh)
        batches += 1
    _advance_watermark(engine, portal_id, until, now)
    if stored:
        window = f"[{since.isoformat()}, {until.isoformat()})"
        log.info("reconcile portal %s: %d new of %d in %s", portal_id, stored, found, window)
    return ReconcileResult(portal_id, since, until, found, stored, batches, until)


# -- worker wiring ------------------------------------------------------------------------------


class HubSpotJobs:
    """The worker's HubSpot jobs: write-back delivery and reconciliation, for every portal.

    One :class:`~sla_bot.portals.registry.PortalClients` per worker process, shared with the
    engine's fetcher, so each portal's calls draw on that portal's budget (which the database
    shares with the other workers).
    """

    def __init__(
        self,
        services: Services,
        properties: Callable[[], Sequence[str]] | None = None,
        client: PortalClients | None = None,
    ) -> None:
        self.services = services
        self._properties = properties or (lambda: DEFAULT_PROPERTIES)
        self._clients = client  # e.g. the engine's; else built here on first use
        self._own = client is None
        self._lock = threading.Lock()

    @property
    def clients(self) -> PortalClients | None:
        """Per-portal clients; None when no portal can have credentials."""
        if not self.services.settings.hubspot_outbound:
            return None
        with self._lock:
            if self._clients is None:
                s = self.services
                self._clients = PortalClients(s.engine, s.settings, s.clock)
            return self._clients

    def close(self) -> None:
        """Close the clients this wiring built (clients passed in belong to the caller)."""
        with self._lock:
            if self._clients is not None and self._own:
                self._clients.close()

    def deliver(self) -> tuple[int, int]:
        """Deliver due ``hubspot`` outbox rows; (sent, failed). No credentials: rows wait."""
        clients = self.clients
        if clients is None:
            return 0, 0
        # A few threads, one leased row each: a hung call holds up only its own row, and each
        # portal's budget (shared by every worker through the database) paces the sends.
        writer, now = Counted(HubSpotWriter(clients)), self.services.clock.now()
        return deliver_parallel(
            self.services.engine,
            writer,
            now=now,
            workers=DELIVER_THREADS,
            batch=5,
            limit=DELIVER_BATCH,
            clock=self.services.clock,
        )

    def reconcile(self) -> list[ReconcileResult]:
        """One reconciliation run per portal that has a client (by one worker at a time)."""
        clients = self.clients
        if not self.services.settings.reconcile_on or clients is None:
            return []
        results = []
        engine = self.services.engine
        for portal_id in clients.portal_ids():
            with try_lock(engine, "reconcile", portal_id) as mine:
                if not mine:
                    continue
                try:
                    results.append(
                        reconcile_once(
                            engine,
                            clients.client_for(portal_id),
                            portal_id=portal_id,
                            now=self.services.clock.now(),
                            properties=self._properties(),
                        )
                    )
                except (HubSpotError, LookupError) as err:
                    log.warning(
                        "reconcile portal %s failed, the next run repeats the window: %s",
                        portal_id,
                        err,
                    )
        return results


def hubspot_jobs(
    services: Services,
    properties: Callable[[], Sequence[str]] | None = None,
    client: PortalClients | None = None,
) -> list[tuple[str, Callable[[], object], float]]:
    """(name, callable, seconds) for :func:`sla_bot.worker.jobs`; none without credentials.

    ``properties``: what reconciliation fetches (the rules' properties); ``client``: the
    worker's per-portal clients, shared with the engine's fetcher.
    """
    if not services.settings.hubspot_outbound:
        return []
    wiring = HubSpotJobs(services, properties, client)
    jobs: list[tuple[str, Callable[[], object], float]] = [
        ("deliver-hubspot-writeback", wiring.deliver, services.settings.worker_interval_seconds)
    ]
    if services.settings.reconcile_on:
        interval = services.settings.reconcile_interval_seconds
        jobs.append(("reconcile-hubspot", wiring.reconcile, interval))
    return jobs
