"""Worker job: refresh leads marked `needs_fetch` from HubSpot, up to 100 per API call.

A webhook carries one property; routing and the timeline need the whole contact. If HubSpot is
down (TransientHubSpotError, after the client's own retries) the leads stay marked and the job
backs off exponentially; nothing is dropped, and leads whose events carried enough (e.g. a
property change on a routed lead) were already decided without waiting for this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.errors import HubSpotError, PermanentHubSpotError
from sla_bot.clock import to_epoch_ms
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import leads
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


def referenced_properties(rules: RuleSet) -> list[str]:
    """Every property the routing, stop, pause, connect and disqualification rules read."""
    names = set(BASE_PROPERTIES)
    for block in rules.routing.values():
        for rule in block.leads:
            names |= rule.when.properties()
    for p in rules.policies.values():
        names |= condition_properties(p)
    return sorted(names)


class Fetcher:
    """Holds the backoff between passes (per process; the marks themselves are in the DB)."""

    def __init__(
        self, client: HubSpotClient, *, portal_id: int | None = None, max_backoff: float = 300.0
    ) -> None:
        self.client = client
        self.portal_id = portal_id  # the token's portal; discovered on first use if None
        self.max_backoff = max_backoff
        self.failures = 0
        self.retry_at: datetime | None = None
        self.owner_names: dict[str, str] = {}

    def _back_off(self, exc: HubSpotError, now: datetime) -> int:
        self.failures += 1
        delay = min(self.max_backoff, 2.0 ** min(self.failures, 10))
        if isinstance(exc, PermanentHubSpotError):
            delay = self.max_backoff
        self.retry_at = now + timedelta(seconds=delay)
        log.warning("contact fetch failed (%s); retrying in %.0fs", exc, delay)
        return 0

    def run(self, engine: Engine, loaded: LoadedRules, *, now: datetime, limit: int = 100) -> int:
        """Refresh up to `limit` marked leads; returns how many were refreshed."""
        if self.retry_at is not None and now < self.retry_at:
            return 0
        if self.portal_id is None:
            try:
                self.portal_id = self.client.get_portal_id()
            except HubSpotError as exc:
                return self._back_off(exc, now)
        with engine.connect() as conn:
            marked = conn.execute(
                select(leads.c.id, leads.c.object_id)
                # A token reads one portal: never look up another portal's contact ids with it.
                .where(leads.c.needs_fetch == 1, leads.c.portal_id == self.portal_id)
                .order_by(leads.c.id)
                .limit(limit)
            ).all()
        if not marked:
            return 0
        props = referenced_properties(loaded.ruleset)
        try:
            found = self.client.batch_read_contacts([str(r.object_id) for r in marked], props)
            self._owner_names(c.get("hubspot_owner_id") for c in found.values())
        except HubSpotError as exc:
            return self._back_off(exc, now)
        self.failures, self.retry_at = 0, None
        for r in marked:
            contact = found.get(str(r.object_id))
            with write_transaction(engine, background=True) as conn:
                lead = repo.get(conn, r.id, for_update=True)
                if lead is None or not lead.needs_fetch:
                    continue
                owner = contact.get("hubspot_owner_id") if contact is not None else None
                entries = apply_fetched(
                    lead,
                    None if contact is None else dict(contact.properties),
                    loaded,
                    now=now,
                    owner_name=self.owner_names.get(owner) if owner else None,
                )
                store(conn, lead, entries, now=now)  # under the row lock: CAS holds
        return len(marked)

    def _owner_names(self, owner_ids: Iterable[str | None]) -> None:
        for owner_id in {o for o in owner_ids if o and o not in self.owner_names}:
            owner = self.client.get_owner(owner_id)
            self.owner_names[owner_id] = owner.name if owner else f"owner {owner_id}"


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
