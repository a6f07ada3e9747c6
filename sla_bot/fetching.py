"""Worker job: refresh leads marked `needs_fetch` from HubSpot, portal by portal.

A webhook carries one property; routing and the timeline need the whole contact. Each portal's
contacts are read with that portal's own client (up to 100 per call), by one worker at a time
(a per-portal try-lock, so two workers never spend budget on the same contacts).

* HubSpot down (TransientHubSpotError, after the client's retries): that portal's leads stay
  marked and it backs off exponentially; other portals go on; nothing is dropped.
* A portal without a client (no token for it, removed, uninstalled): its leads are routed on
  what their events carried, as without any token, never left waiting; each gets an audit row,
  the portal a log line (once per process) and the metric `sla_bot_leads_routed_without_fetch`.
  A portal paused by HubSpot's daily limit just waits for the reset.
* One contact whose data cannot be applied (e.g. `num_contacted_notes: "1e999"`) is marked
  fetched with an `error` audit row and skipped; the leads after it proceed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.errors import HubSpotError, PermanentHubSpotError
from integrations.hubspot.writeback import SinglePortal
from sla_bot import metrics
from sla_bot.clock import to_epoch_ms
from sla_bot.db.engine import write_transaction
from sla_bot.db.locks import try_lock
from sla_bot.db.schema import leads
from sla_bot.engine import audit
from sla_bot.engine import leads as repo
from sla_bot.engine.apply import finish, store
from sla_bot.engine.events import close, set_properties
from sla_bot.engine.leads import Lead
from sla_bot.rules import LoadedRules, RuleSet
from sla_bot.rules.conditions import condition_properties
from sla_bot.rules.select import instant_of

log = logging.getLogger(__name__)

BASE_PROPERTIES = (
    "createdate",
    "lastmodifieddate",
    "hubspot_owner_id",
    "hubspot_owner_assigneddate",
    "hs_lead_status",
    "lifecyclestage",
    "num_contacted_notes",
    "notes_last_contacted",
    "firstname",
    "lastname",
    "email",
    "company",
    "hs_analytics_source",
    "recent_conversion_event_name",
    "lead_source",
)


def referenced_properties(rules: RuleSet, extra: Iterable[str] = ()) -> list[str]:
    """Every property the routing, stop, pause, connect and disqualification rules read, and
    `extra` (where leads come from: source and campaign, for the outcome facts)."""
    names = set(BASE_PROPERTIES) | set(extra)
    for block in rules.routing.values():
        for rule in block.leads:
            names |= rule.when.properties()
    for p in rules.policies.values():
        names |= condition_properties(p)
    return sorted(names)


class ClientSource(Protocol):
    """Per-portal HubSpot clients (:class:`sla_bot.portals.registry.PortalClients`)."""

    def client_for(self, portal_id: int) -> HubSpotClient:
        """The portal's client; LookupError (with `reason`, `retry_after`) if it has none."""
        ...


class Fetcher:
    """Holds each portal's backoff between passes (per process; the marks are in the DB)."""

    def __init__(
        self,
        clients: HubSpotClient | ClientSource,
        *,
        portal_id: int | None = None,
        max_backoff: float = 300.0,
        extra_properties: Iterable[str] = (),
    ) -> None:
        self.extra_properties = tuple(extra_properties)
        if isinstance(clients, HubSpotClient):  # one token, one portal (discovered if unset)
            single = SinglePortal(clients, portal_id)
            self._client_for: Any = single
        else:
            self._client_for = clients.client_for
        self.max_backoff = max_backoff
        self._failures: dict[int, int] = {}
        self._retry_at: dict[int, datetime] = {}
        self._owner_names: dict[tuple[int, str], str] = {}
        self._reported: set[tuple[int, str]] = set()

    @property
    def retry_at(self) -> datetime | None:
        """The latest time a portal backs off until (None when none does)."""
        return max(self._retry_at.values(), default=None)

    def _back_off(self, portal_id: int, exc: HubSpotError, now: datetime) -> int:
        failures = self._failures[portal_id] = self._failures.get(portal_id, 0) + 1
        delay = min(self.max_backoff, 2.0 ** min(failures, 10))
        if isinstance(exc, PermanentHubSpotError):
            delay = self.max_backoff
        if exc.retry_after:
            delay = max(delay, exc.retry_after)
        self._retry_at[portal_id] = now + timedelta(seconds=delay)
        log.warning(
            "portal %s: contact fetch failed (%s); retrying in %.0fs", portal_id, exc, delay
        )
        return 0

    def run(self, engine: Engine, loaded: LoadedRules, *, now: datetime, limit: int = 100) -> int:
        """Refresh up to `limit` marked leads per portal; returns how many were handled."""
        with engine.connect() as conn:
            portals = (
                conn.execute(select(leads.c.portal_id).where(leads.c.needs_fetch == 1).distinct())
                .scalars()
                .all()
            )
        done = 0
        for portal_id in sorted(portals):
            retry_at = self._retry_at.get(portal_id)
            if retry_at is not None and now < retry_at:
                continue
            try:
                client = self._client_for(portal_id)
            except LookupError as exc:
                if getattr(exc, "retry_after", None) is None:  # no client, and none coming
                    done += self._route_unfetched(engine, loaded, portal_id, exc, now, limit)
                continue
            except HubSpotError as exc:  # discovering the token's portal failed
                self._back_off(portal_id, exc, now)
                continue
            with try_lock(engine, "fetch-contacts", portal_id) as mine:
                if mine:
                    done += self._fetch(engine, loaded, portal_id, client, now, limit)
        return done

    def _marked(self, engine: Engine, portal_id: int, limit: int) -> list[Any]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    select(leads.c.id, leads.c.object_id)
                    .where(leads.c.needs_fetch == 1, leads.c.portal_id == portal_id)
                    .order_by(leads.c.id)
                    .limit(limit)
                ).all()
            )

    def _fetch(
        self,
        engine: Engine,
        loaded: LoadedRules,
        portal_id: int,
        client: HubSpotClient,
        now: datetime,
        limit: int,
    ) -> int:
        marked = self._marked(engine, portal_id, limit)
        if not marked:
            return 0
        props = referenced_properties(loaded.ruleset, self.extra_properties)
        try:
            found = client.batch_read_contacts([str(r.object_id) for r in marked], props)
            owners = {c.get("hubspot_owner_id") for c in found.values()}
            self._lookup_owners(client, portal_id, owners)
        except HubSpotError as exc:
            return self._back_off(portal_id, exc, now)
        self._failures.pop(portal_id, None)
        self._retry_at.pop(portal_id, None)
        for r in marked:
            contact = found.get(str(r.object_id))
            self._isolated(
                engine,
                r.id,
                now,
                lambda conn, lead, c=contact: self._apply(conn, lead, c, loaded, portal_id, now),
            )
        return len(marked)

    def _apply(
        self,
        conn: Any,
        lead: repo.Lead,
        contact: Any,
        loaded: LoadedRules,
        portal_id: int,
        now: datetime,
    ) -> None:
        owner = contact.get("hubspot_owner_id") if contact is not None else None
        entries = apply_fetched(
            lead,
            None if contact is None else dict(contact.properties),
            loaded,
            now=now,
            owner_name=self._owner_names.get((portal_id, owner)) if owner else None,
        )
        store(conn, lead, entries, now=now)  # under the row lock: CAS holds

    def _route_unfetched(
        self,
        engine: Engine,
        loaded: LoadedRules,
        portal_id: int,
        why: LookupError,
        now: datetime,
        limit: int,
    ) -> int:
        """No client for the portal: route its leads on what their events carried."""
        reason = str(getattr(why, "reason", "not_configured"))
        if (portal_id, reason) not in self._reported:
            self._reported.add((portal_id, reason))
            log.warning("%s: its leads are routed on what their webhook events carry", why)
        marked = self._marked(engine, portal_id, limit)
        entry = ("not_fetched", {"reason": reason, "routed_on": "event properties"})

        def route_on_events(conn: Any, lead: repo.Lead) -> None:
            entries = [entry]
            lead.needs_fetch = 0
            finish(lead, loaded, now=now, fetching=True, entries=entries)
            store(conn, lead, entries, now=now)

        for r in marked:
            if self._isolated(engine, r.id, now, route_on_events):
                metrics.LEADS_UNFETCHED.labels(portal=str(portal_id), reason=reason).inc()
        return len(marked)

    def _isolated(self, engine: Engine, lead_id: int, now: datetime, change: Any) -> bool:
        """Run `change(conn, lead)` for one marked lead; a failure marks only that lead."""
        try:
            with write_transaction(engine, background=True) as conn:
                lead = repo.get(conn, lead_id, for_update=True)
                if lead is None or not lead.needs_fetch:
                    return False
                change(conn, lead)
            return True
        except OperationalError:
            raise  # the database itself: the whole job retries on its next tick
        except Exception as exc:  # one contact's bad data must not stop the leads after it
            self._mark_failed(engine, lead_id, exc, now)
            return False

    def _mark_failed(self, engine: Engine, lead_id: int, exc: Exception, now: datetime) -> None:
        """Leave the lead as it was, not marked any more, with the error in its audit trail."""
        kind = type(exc).__name__
        log.error("lead %s: fetched contact cannot be applied (%s); skipped", lead_id, kind)
        log.debug("lead %s: fetch error", lead_id, exc_info=exc)
        metrics.FETCH_ERRORS.inc()
        with write_transaction(engine, background=True) as conn:
            conn.execute(
                update(leads)
                .where(leads.c.id == lead_id)
                .values(needs_fetch=0, version=leads.c.version + 1, updated_at=now)
            )
            audit.record(conn, lead_id, [("error", {"stage": "fetch", "error": kind})], at=now)

    def _lookup_owners(
        self, client: HubSpotClient, portal_id: int, owner_ids: Iterable[str | None]
    ) -> None:
        for owner_id in {o for o in owner_ids if o and (portal_id, o) not in self._owner_names}:
            owner = client.get_owner(owner_id)
            self._owner_names[(portal_id, owner_id)] = owner.name if owner else f"owner {owner_id}"


def apply_fetched(
    lead: Lead,
    values: dict[str, Any] | None,
    loaded: LoadedRules,
    *,
    now: datetime,
    owner_name: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """What a fetched contact does to its lead (pure): its properties as of its last
    modification, or closing (None: HubSpot no longer has it); then routing.

    The `fetched` audit row keeps the values read, so a backtest replays the fetch exactly.
    """
    entries: list[tuple[str, dict[str, Any]]] = []
    if values is None:
        close(lead, "not_found", now)
        entries.append(("closed", {"reason": "not_found"}))
    else:
        modified = instant_of(values.get("lastmodifieddate")) or now
        entries += set_properties(lead, values, to_epoch_ms(modified))
        owner = values.get("hubspot_owner_id")
        if owner and owner_name is not None:
            lead.state.owner_names[owner] = owner_name
        detail: dict[str, Any] = {"properties": len(values), "values": values}
        if owner_name is not None:
            detail["owner_name"] = owner_name
        entries.append(("fetched", detail))
    lead.needs_fetch = 0
    finish(lead, loaded, now=now, fetching=True, entries=entries)
    return entries
