"""A lead's timeline now: its pinned policy, its history, its touches (what decisions read)."""

from __future__ import annotations

from datetime import datetime

from sla_bot.engine.leads import Lead
from sla_bot.engine.state import history
from sla_bot.engine.touches import for_timeline
from sla_bot.rules import RuleSet, Timeline, build_timeline


def timeline_of(lead: Lead, pinned: RuleSet, now: datetime) -> Timeline | None:
    """The lead's timeline at `now` under its pinned policy (None: no policy)."""
    if lead.policy is None or lead.policy not in pinned.policies:
        return None
    policy = pinned.policies[lead.policy]
    props = dict(lead.properties)
    if lead.owner_id:
        props["hubspot_owner_id"] = lead.owner_id
    if lead.clock_started_at and policy.first_touch.clock_starts == "owner_assigned":
        # The clock started at the first assignment; a later owner change does not restart it.
        props["hubspot_owner_assigneddate"] = lead.clock_started_at.isoformat()
    touches = for_timeline(lead.touches, policy.touches.signals)
    return build_timeline(
        pinned,
        lead.portal_id,
        props,
        touches=touches,
        now=now,
        policy=lead.policy,
        history=history(lead.state),
    )
