"""Who owns a lead, and who owned it when: owner changes and touch attribution."""

from __future__ import annotations

from datetime import datetime

from sla_bot.engine.leads import Lead
from sla_bot.engine.state import OwnerRecord

BY_HUBSPOT, BY_ROUND_ROBIN = "hubspot", "sla-bot"


def set_owner(lead: Lead, owner_id: str | None, at: datetime, *, by: str = BY_HUBSPOT) -> None:
    """Record an owner change made at `at` by `by` (hubspot, sla-bot or slack:<user>).

    The first-touch clock does not restart and an earlier breach stays; pending messages follow
    the new owner, and an "I'm on it" or a snooze of the previous owner no longer applies.
    """
    if owner_id == lead.owner_id:
        return
    owners = lead.state.owners
    if owners and owners[-1].at > at:
        at = owners[-1].at  # applied after a later change (e.g. ours): it is the newest now
    owners.append(OwnerRecord(at=at, owner_id=owner_id, by=by))
    lead.owner_id = owner_id
    lead.owner_assigned_at = at
    lead.properties["hubspot_owner_id"] = owner_id
    lead.state.ack = None
    lead.state.snooze = None
    lead.state.button_version += 1


def owner_at(lead: Lead, at: datetime) -> str | None:
    """Who owned the lead at `at` (touch attribution)."""
    owner = None
    for change in lead.state.owners:
        if change.at > at:
            return owner if owner is not None else change.owner_id
        owner = change.owner_id
    return lead.owner_id


def reassigned_by_a_person_since(lead: Lead, since: datetime) -> bool:
    """Whether someone other than sla-bot's round robin moved the lead from one owner to
    another at or after `since` (an automatic reassignment must not overwrite that choice; a
    first assignment, e.g. by a HubSpot workflow right after creation, is not such a choice)."""
    owners = lead.state.owners
    return any(
        o.at >= since and o.by != BY_ROUND_ROBIN and i > 0 and owners[i - 1].owner_id is not None
        for i, o in enumerate(owners)
    )
