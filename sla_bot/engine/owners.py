"""Who owns a lead, and who owned it when: owner changes and touch attribution."""

from __future__ import annotations

from datetime import datetime

from sla_bot.engine.leads import Lead
from sla_bot.engine.messages import button_version


def set_owner(lead: Lead, owner_id: str | None, now: datetime) -> None:
    """Record an owner change. The first-touch clock does not restart and an earlier breach
    stays (documented default); later nudges go to the new owner."""
    if owner_id == lead.owner_id:
        return
    lead.owner_id = owner_id
    lead.owner_assigned_at = now
    lead.state.setdefault("owners", []).append({"at": now.isoformat(), "owner_id": owner_id})
    lead.properties["hubspot_owner_id"] = owner_id
    lead.state["button_version"] = button_version(lead) + 1


def owner_at(lead: Lead, at: datetime) -> str | None:
    """Who owned the lead at `at` (touch attribution)."""
    owner = None
    for change in lead.state.get("owners", []):
        if datetime.fromisoformat(change["at"]) > at:
            return owner if owner is not None else change["owner_id"]
        owner = change["owner_id"]
    return lead.owner_id
