"""What a notification says: the one builder of the Slack outbox payload, built from a lead.

The decision (time-driven steps) and the Slack buttons (manual reassignment) both build their
messages here, so every message carries the same facts, the same recipient shape and the same
one-line text, and `lead show` and the console notifier read one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sla_bot.engine.leads import Lead
from sla_bot.rules import RuleSet
from sla_bot.rules.model import Noise
from sla_bot.rules.people import Recipient
from sla_bot.rules.select import instant_of, text_of
from sla_bot.rules.steps import (
    ACK_EXPIRED,
    ASSIGNED,
    BREACH,
    CADENCE_DUE,
    CADENCE_END,
    LADDER,
    PREMATURE_DQ,
    REASSIGNED,
    RECYCLE,
    RESUME,
    WARNING,
    Step,
)


def owner_name(rules: RuleSet | None, lead: Lead, owner_id: str | None = None) -> str | None:
    owner_id = owner_id if owner_id is not None else lead.owner_id
    if not owner_id:
        return None
    if rules is not None:
        found = rules.find_member(owner_id=owner_id)
        if found is not None:
            return found[1].label()
    return lead.state.owner_names.get(owner_id) or f"owner {owner_id}"


def owner_recipient(
    rules: RuleSet | None, lead: Lead, owner_id: str | None, deliver_at: datetime | None = None
) -> Recipient:
    """A HubSpot owner as someone to tell: the team member if the rules know them."""
    found = rules.find_member(owner_id=owner_id) if rules is not None and owner_id else None
    if found is None:
        name = owner_name(None, lead, owner_id) or "(no owner)"
        return Recipient("owner", name, owner_id=owner_id, deliver_at=deliver_at)
    m = found[1]
    return Recipient("owner", m.label(), m.slack, m.email, m.owner_id, deliver_at)


def contact_name(p: Mapping[str, Any]) -> str | None:
    """The contact's name as people say it: first and last name, else the e-mail."""
    name = " ".join(x for x in (text_of(p.get("firstname")), text_of(p.get("lastname"))) if x)
    return name or text_of(p.get("email"))


def contact_url(portal_id: int, object_id: int) -> str:
    """The contact's record in HubSpot."""
    return f"https://app.hubspot.com/contacts/{portal_id}/record/0-1/{object_id}"


def lead_facts(lead: Lead, rules: RuleSet | None, *, version: int | None = None) -> dict[str, Any]:
    p = lead.properties
    created = instant_of(p.get("createdate"))
    action = text_of(p.get("recent_conversion_event_name")) or text_of(p.get("lead_source"))
    return {
        "id": lead.id,
        "portal_id": lead.portal_id,
        "object_id": lead.object_id,
        "name": contact_name(p) or f"contact {lead.object_id}",
        "email": text_of(p.get("email")),
        "company": text_of(p.get("company")),
        "source": text_of(p.get("hs_analytics_source")) or text_of(p.get("lead_source")),
        "action": action,
        "created_at": created.isoformat() if created else None,
        "hubspot_url": contact_url(lead.portal_id, lead.object_id),
        "owner_id": lead.owner_id,
        "owner_name": owner_name(rules, lead),
        "version": lead.state.button_version if version is None else version,
    }


def recipient_dict(r: Recipient) -> dict[str, Any]:
    return {
        "role": r.role,
        "slack": r.slack,
        "email": r.email,
        "owner_id": r.owner_id,
        "name": r.name,
    }


def recipient_id(r: Recipient | Mapping[str, Any]) -> str:
    """The one id a recipient is known by in outbox keys and rows."""
    get = r.get if isinstance(r, Mapping) else r.__dict__.get
    return str(get("slack") or get("owner_id") or get("email") or get("name"))


# Escalation-like messages to managers and channels: what noise control batches and caps.
BATCHED = frozenset({WARNING, BREACH, LADDER, CADENCE_DUE, CADENCE_END, PREMATURE_DQ, RECYCLE})


def batching(noise: Noise | None, kind: str, r: Recipient, portal_id: int) -> dict[str, Any] | None:
    """What the Slack side needs to batch this message: None when it goes out on its own."""
    if noise is None or not noise.active or kind not in BATCHED:
        return None
    if r.role not in ("manager", "channel"):
        return None
    return {
        "key": f"{portal_id}:{r.role}:{recipient_id(r)}",
        "window": noise.window_seconds,
        "max_per_hour": noise.max_per_hour,
    }


def touch_facts(lead: Lead, min_touches: int | None, max_touches: int | None) -> dict[str, Any]:
    history = [
        {"at": t.at.isoformat(), "connect": t.connect, "kind": t.kind, "owner_id": t.owner_id}
        for t in lead.touches
    ]
    return {"count": len(history), "min": min_touches, "max": max_touches, "history": history}


def next_touch(n: int, min_touches: int | None) -> str:
    """ "Touch 3 of 8" (or "Touch 9" past the minimum): the cadence's one way to say it."""
    return f"Touch {n} of {min_touches}" if min_touches and n <= min_touches else f"Touch {n}"


TEXTS = {
    ASSIGNED: "{name} is yours: a new lead needs a first touch",
    WARNING: "First-touch deadline for {name} is close",
    BREACH: "First-touch deadline for {name} was missed",
    LADDER: "{name} is still untouched after the first-touch deadline ({step})",
    CADENCE_DUE: "{next} is due for {name}",
    CADENCE_END: "The cadence for {name} has ended",
    RECYCLE: "{name} goes back to nurture: {reason}",
    PREMATURE_DQ: "{name} was disqualified after too few touches",
    RESUME: "{name} is back from its pause: time to follow up",
    REASSIGNED: "{name} was reassigned from {old} to {new}",
    ACK_EXPIRED: "You said you were on {name}, but no touch was logged",
}


def text(kind: str, facts: Mapping[str, Any], **extra: Any) -> str:
    template = TEXTS.get(kind, "{name}: " + kind)
    values = {"name": facts["name"], "reason": "", "step": "", "old": "?", "new": "?", "next": ""}
    values.update({k: v for k, v in extra.items() if v is not None})
    return template.format(**values)


def describe(step: Step, timezone: str | None = None) -> str:
    """The step in words with its due time in `timezone` (the lead's calendar): the context
    line under a Slack message and the tail of a HubSpot note, e.g. "Escalation step 2 (10
    business minutes after the deadline), due Fri Nov 20, 10:15 AM EST"."""
    d = step.detail
    what = {
        ASSIGNED: "New lead",
        WARNING: f"First-touch warning (target {d.get('target')})",
        BREACH: f"First-touch deadline (target {d.get('target')})",
        CADENCE_DUE: f"Touch {d.get('touch')} of the cadence (at most {d.get('max_gap')} apart)",
        CADENCE_END: f"End of the cadence ({d.get('touches')} of {d.get('min_touches')} touches)",
        RECYCLE: f"Back to nurture ({d.get('touches')} touches)",
        PREMATURE_DQ: f"Disqualified after {d.get('touches')} of {d.get('min_touches')} touches",
        RESUME: "The follow-up date",
    }.get(step.kind)
    if step.kind == LADDER:
        rung, _, repeat = step.key.removeprefix("ladder.").partition("#r")
        what = f"Escalation step {rung} ({d.get('after')} after the deadline"
        what += f", repeat {repeat})" if repeat else ")"
    return f"{what or step.kind}, due {local_time(step.due_at, timezone)}"


def local_time(at: datetime, timezone: str | None) -> str:
    """E.g. "Fri Nov 20, 10:15 AM EST" (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone)
    return local.strftime("%a %b ") + f"{local.day}, " + local.strftime("%I:%M %p %Z").lstrip("0")


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def message(
    kind: str,
    lead: Lead,
    rules: RuleSet | None,
    recipient: Recipient,
    *,
    step_key: str,
    deadline: datetime | None = None,
    timezone: str | None = None,
    cadence: tuple[int | None, int | None] = (None, None),
    detail: str = "",
    reason: str | None = None,
    version: int | None = None,
    old_owner: Recipient | None = None,
    new_owner: Recipient | None = None,
) -> dict[str, Any]:
    """The Slack outbox payload for one recipient (the contract the Slack side renders)."""
    facts = lead_facts(lead, rules, version=version)
    touches = touch_facts(lead, *cadence)
    names: dict[str, Any] = {}
    if old_owner is not None and new_owner is not None:
        names = {"old": old_owner.name, "new": new_owner.name}
    payload = {
        "kind": kind,
        "step_key": step_key,
        "thread_key": f"lead:{lead.id}",
        "recipient": recipient_dict(recipient),
        "lead": facts,
        "deadline": deadline.isoformat() if deadline else None,
        "timezone": timezone,
        "touches": touches,
        "text": text(
            kind,
            facts,
            reason=reason,
            step=step_key,
            next=next_touch(touches["count"] + 1, cadence[0]),
            **names,
        ),
        "detail": detail,
        "reason": reason,
    }
    if old_owner is not None and new_owner is not None:
        payload["old_owner"] = recipient_dict(old_owner)
        payload["new_owner"] = recipient_dict(new_owner)
    return payload
