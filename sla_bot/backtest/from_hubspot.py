"""`--from-hubspot`: leads created in the period that sla-bot has no full record of.

HubSpot's search API (`createdate` in the period, keyset paged, within the configured rate
budget) returns each contact as it is now. From that, a history is rebuilt:

- created at `createdate` with the properties it has now (source, names, ...);
- owned by its current owner from `hubspot_owner_assigneddate` (earlier owners are unknown);
- `num_contacted_notes` touches: the first at `hs_sa_first_engagement_date` (the current
  owner's first engagement), the last at `notes_last_contacted`, the ones in between spread
  evenly (their exact times are unknown: only the count is);
- its current lead status and lifecycle stage set at `lastmodifieddate` (when they were set is
  unknown).

Buttons pressed in Slack, earlier owners, pauses that ended and statuses that changed back are
not in HubSpot's current values: the report says how many leads were rebuilt this way. One
client per portal, so each portal spends its own rate budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sla_bot.backtest.history import EventBatch, History, Input
from sla_bot.backtest.load import Period
from sla_bot.clock import to_epoch_ms
from sla_bot.engine.events import Event
from sla_bot.fetching import referenced_properties
from sla_bot.rules import RuleSet
from sla_bot.rules.select import instant_of, number_of

FIRST_ENGAGEMENT = "hs_sa_first_engagement_date"
LATER = ("hs_lead_status", "lifecyclestage")  # set at lastmodifieddate: when is unknown
TOUCH_PROPS = ("num_contacted_notes", "notes_last_contacted", FIRST_ENGAGEMENT)


def properties(rules: RuleSet) -> list[str]:
    return sorted({*referenced_properties(rules), *TOUCH_PROPS, "hubspot_owner_assigneddate"})


def rebuild(portal_id: int, contact_id: int, values: Mapping[str, Any]) -> list[EventBatch]:
    """A lead's history from its current HubSpot values (pure; see the module doc)."""
    created = instant_of(values.get("createdate"))
    if created is None:
        return []
    oid = int(contact_id)
    modified = instant_of(values.get("lastmodifieddate")) or created
    owner = values.get("hubspot_owner_id") or None
    assigned = instant_of(values.get("hubspot_owner_assigneddate"))
    base = {
        k: v
        for k, v in values.items()
        if k not in (*TOUCH_PROPS, *LATER, "hubspot_owner_id", "lastmodifieddate")
    }
    base["num_contacted_notes"] = "0"
    owner_later = owner is not None and assigned is not None and assigned > created
    if owner and not owner_later:
        base["hubspot_owner_id"] = owner
    batches = [_batch(portal_id, oid, created, [_sync(portal_id, oid, created, base)])]
    if owner_later:
        assert assigned is not None
        batches.append(_prop_batch(portal_id, oid, assigned, {"hubspot_owner_id": owner}))
    for k, at in enumerate(touch_times(values, created), start=1):
        change = {"notes_last_contacted": at.isoformat(), "num_contacted_notes": str(k)}
        batches.append(_prop_batch(portal_id, oid, at, change))
    later = {k: values[k] for k in LATER if values.get(k) not in (None, "")}
    if later:
        last = max([modified, *(b.at for b in batches)])
        batches.append(_prop_batch(portal_id, oid, last, later))
    return batches


def touch_times(values: Mapping[str, Any], created: datetime) -> list[datetime]:
    """When the contact's touches were: exact for the first and the last, spread between."""
    n = number_of(values.get("num_contacted_notes"))
    count = int(n) if n is not None and n > 0 else 0
    if count == 0:
        return []
    last = instant_of(values.get("notes_last_contacted")) or created
    first = instant_of(values.get(FIRST_ENGAGEMENT)) or last
    first = min(max(first, created), last)
    if count == 1:
        return [first if values.get(FIRST_ENGAGEMENT) else last]
    step = (last - first) / (count - 1)
    return [first + step * i for i in range(count - 1)] + [last]


def _sync(portal_id: int, oid: int, at: datetime, props: dict[str, Any]) -> Event:
    ms = to_epoch_ms(at)
    raw = {"subscriptionType": "contact.sync", "objectId": oid, "properties": props}
    return Event(portal_id, oid, "contact.sync", ms, "", None, raw)


def _prop_batch(portal_id: int, oid: int, at: datetime, props: dict[str, Any]) -> EventBatch:
    ms = to_epoch_ms(at)
    ordered = sorted(props.items(), key=lambda kv: kv[0] != "notes_last_contacted")
    events = [
        Event(portal_id, oid, "contact.propertyChange", ms, k, None if v is None else str(v))
        for k, v in ordered
    ]
    return _batch(portal_id, oid, at, events)


def _batch(portal_id: int, oid: int, at: datetime, events: Iterable[Event]) -> EventBatch:
    return EventBatch(at, portal_id, oid, tuple(events))


def from_search(
    client: Any, portal_id: int, period: Period, rules: RuleSet, known: set[tuple[int, int]]
) -> tuple[list[Input], int]:
    """Inputs for the portal's contacts created in the period that are not in `known`."""
    inputs: list[Input] = []
    leads = 0
    for contact in client.search_contacts_created(period.start, period.end, properties(rules)):
        key = (portal_id, int(contact.id))
        if key in known:
            continue
        known.add(key)
        batches = rebuild(portal_id, int(contact.id), contact.properties)
        if batches:
            leads += 1
            inputs += batches
    return inputs, leads


def add_from_hubspot(history: History, settings: Any, rules: RuleSet, period: Period) -> int:
    """Add the rebuilt leads to `history` (one HubSpot client per portal); returns how many."""
    from integrations.hubspot.client import HubSpotClient

    token = settings.hubspot_access_token
    if token is None:
        raise SystemExit("sla-bot rules backtest: --from-hubspot needs HUBSPOT_ACCESS_TOKEN")
    timeout = settings.hubspot_timeout_seconds
    client = HubSpotClient(
        token.get_secret_value(),
        base_url=settings.hubspot_api_base_url,
        timeout=(min(3.05, timeout), timeout),
        rate_limit=settings.hubspot_rate,
    )
    clients = {}
    with client:
        portal = settings.hubspot_portal_id or client.get_portal_id()
        if period.portal_id is not None and period.portal_id != portal:
            raise SystemExit(
                f"sla-bot rules backtest: the HubSpot token reads portal {portal}, "
                f"not --portal {period.portal_id}"
            )
        clients[portal] = client
        return add_inputs(history, clients, rules, period)


def add_inputs(history: History, clients: Mapping[int, Any], rules: RuleSet, period: Period) -> int:
    """Search each portal with its own client and add what it finds to `history`."""
    known = history.leads() | set(history.lead_ids)
    total = 0
    added: list[Input] = []
    for portal, client in clients.items():
        inputs, n = from_search(client, portal, period, rules, known)
        added += inputs
        total += n
    if total:
        history.extend(added)
        history.unknown.append(
            f"{total} leads rebuilt from HubSpot's current values: earlier owners, Slack "
            "buttons, statuses that changed back and the exact times of touches between the "
            "first and the last (only their count is known) are not known"
        )
    return total
