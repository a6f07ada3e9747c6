"""How one webhook event changes a lead (pure): properties, touches, owner, closing, routing.

Events of one contact are applied in `occurredAt` order; a property value older than the one
already applied is ignored (HubSpot retries can deliver an old value late). Routing happens once
the lead's properties are known (fetched, or carried by the events when there is no HubSpot
token); the matched policy is frozen as a snapshot and never re-routed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sla_bot.clock import from_epoch_ms
from sla_bot.engine import touches as tch
from sla_bot.engine.leads import Lead
from sla_bot.engine.owners import set_owner
from sla_bot.rules import LoadedRules
from sla_bot.rules.select import instant_of

FINAL = ("deleted", "merged", "not_found")
OWNER = "hubspot_owner_id"


@dataclass(frozen=True)
class Event:
    """The parts of a stored event the engine uses (raw: the event's JSON from the batch)."""

    portal_id: int
    object_id: int
    type: str
    occurred_ms: int
    property_name: str = ""
    property_value: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Applied:
    outcome: str
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    close_objects: list[int] = field(default_factory=list)  # merged-away contacts


def new_lead(portal_id: int, object_id: int) -> Lead:
    return Lead(portal_id=portal_id, object_id=object_id, status="open", needs_fetch=1)


def apply_event(lead: Lead, ev: Event) -> Applied:
    """Change `lead` in place for one event; return the outcome for the event row."""
    at = from_epoch_ms(ev.occurred_ms)
    lead.last_event_ms = max(lead.last_event_ms, ev.occurred_ms)
    if lead.closed_reason in FINAL:
        return Applied(f"ignored:{lead.closed_reason}")
    t = ev.type
    if t == "contact.creation":
        lead.properties.setdefault("createdate", at.isoformat())
        lead.needs_fetch = 1
        return Applied("applied", [("created", {"at": at.isoformat()})])
    if t in ("contact.deletion", "contact.privacyDeletion"):
        close(lead, "deleted", at)
        return Applied("applied", [("closed", {"reason": "deleted", "event": t})])
    if t == "contact.merge":
        return _merge(lead, ev, at)
    if t == "contact.propertyChange":
        if not ev.property_name:
            return Applied("ignored:no_property")
        changed = set_properties(lead, {ev.property_name: ev.property_value}, ev.occurred_ms)
        return Applied("applied" if changed else "stale", changed)
    if t in ("contact.sync", "workflow.contact"):
        props = ev.raw.get("properties") or {}
        props = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in props.items()}
        changed = set_properties(lead, props, ev.occurred_ms)
        if t == "contact.sync" or "createdate" in props:
            lead.needs_fetch = 0  # the event carries the whole contact
        return Applied("applied", changed)
    return Applied(f"ignored:{t}"[:32])


def _merge(lead: Lead, ev: Event, at: datetime) -> Applied:
    raw = ev.raw
    primary = raw.get("primaryObjectId") or raw.get("newObjectId") or ev.object_id
    merged = [int(x) for x in raw.get("mergedObjectIds") or [] if int(x) != int(primary)]
    if int(primary) != lead.object_id and lead.object_id not in merged:
        merged.append(lead.object_id)
    out = Applied("applied", close_objects=[m for m in merged if m != lead.object_id])
    if lead.object_id in merged:
        close(lead, "merged", at)
        lead.state.merged_into = int(primary)
        out.audit.append(("closed", {"reason": "merged", "into": int(primary)}))
    else:
        lead.needs_fetch = 1  # the primary's properties may have changed
        out.audit.append(("merged", {"absorbed": merged}))
    return out


def close(lead: Lead, reason: str, at: datetime) -> None:
    lead.status, lead.closed_reason, lead.closed_at = "closed", reason, at
    lead.next_due_at = None
    lead.state.button_version += 1


def set_properties(lead: Lead, props: dict[str, Any], occurred_ms: int) -> list[Any]:
    """Apply property values seen at `occurred_ms`; returns audit entries for what changed.

    A value older than the one already applied is stale and ignored; every applied value is
    kept with its time, so conditions (pause, stop, disqualification) know since when they hold.
    """
    at = from_epoch_ms(occurred_ms)
    state = lead.state
    seen = state.property_times
    audit: list[tuple[str, dict[str, Any]]] = []
    if OWNER in props and seen.get(OWNER, 0) <= occurred_ms:
        owner = props[OWNER] or None
        if owner != lead.owner_id:
            audit.append(("owner", {"from": lead.owner_id, "to": owner, "at": at.isoformat()}))
            set_owner(lead, owner, _assigned_at(lead, props, at))
            if owner and not lead.properties.get("hubspot_owner_assigneddate"):
                lead.properties["hubspot_owner_assigneddate"] = at.isoformat()
    # The touch signals are read before the property itself is overwritten.
    ordered = sorted(props, key=lambda n: n != tch.LAST)  # last-contacted first: its time is exact
    for name in ordered:
        value = props[name]
        if seen.get(name, 0) > occurred_ms:
            continue
        seen[name] = occurred_ms
        added: list[Any] = []
        if name == tch.COUNT:
            added = tch.observe_count(lead.touches, state, value, at=at, owner_id=lead.owner_id)
        elif name == tch.LAST:
            added = tch.observe_last_contacted(lead.touches, state, value, owner_id=lead.owner_id)
        for touch in added:
            audit.append(("touch", touch.model_dump(mode="json", exclude_defaults=True)))
        if added:
            state.button_version += 1
        old = lead.properties.get(name)
        if old != value or name not in lead.properties:
            lead.properties[name] = value
            state.record_value(name, value, occurred_ms)
            if name not in (tch.COUNT, tch.LAST, OWNER, "lastmodifieddate") and old != value:
                audit.append(("property", {"name": name, "from": old, "to": value}))
    lead.touches.sort(key=lambda t: t.at)
    return audit


def _assigned_at(lead: Lead, props: dict[str, Any], at: datetime) -> datetime:
    """When the owner got the lead: the event's time, except for the owner a contact already
    had when sla-bot first saw it (then HubSpot's assignment date, else the creation date), so
    a contact found late does not look newly assigned."""
    if lead.state.owners:
        return at
    for name in ("hubspot_owner_assigneddate", "createdate"):
        since = instant_of(props.get(name) or lead.properties.get(name))
        if since is not None:
            return min(since, at)
    return at


def route(lead: Lead, loaded: LoadedRules, now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Match an un-routed lead to a policy and freeze the snapshot; idempotent."""
    if lead.policy is not None or lead.closed_reason in FINAL:
        return []
    r = loaded.ruleset.route(lead.portal_id, lead.properties)
    if r.policy is None:
        if lead.status != "ignored":
            lead.status = "ignored"
            return [("ignored", {"why": r.explain(), "rules_version": loaded.version})]
        return []
    snap = loaded.policy_snapshot(r.policy)
    lead.policy, lead.policy_snapshot = r.policy, snap
    lead.policy_hash, lead.rules_version = loaded.policy_hash(r.policy), loaded.version
    lead.status = "open"
    lead.created_at = instant_of(lead.properties.get("createdate"))
    starts = loaded.ruleset.policies[r.policy].first_touch.clock_starts
    prop = "createdate" if starts == "created" else "hubspot_owner_assigneddate"
    lead.clock_started_at = instant_of(lead.properties.get(prop))
    return [("routed", {"policy": r.policy, "why": r.explain(), "rules_version": loaded.version})]


def start_clock_if_due(lead: Lead) -> None:
    """`owner_assigned` policies: the clock starts at the first assignment and stays there."""
    if lead.clock_started_at is None and lead.policy_snapshot:
        definition = lead.policy_snapshot.get("definition", {})
        starts = definition.get("first_touch", {}).get("clock_starts", "created")
        prop = "createdate" if starts == "created" else "hubspot_owner_assigneddate"
        lead.clock_started_at = instant_of(lead.properties.get(prop))
