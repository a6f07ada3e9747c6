"""The facts a notification carries (the slack outbox payload contract), built from a lead.

Kept apart from the decision so the Slack side and `lead show` read one definition of "the lead
dict" and the one-line texts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sla_bot.engine.leads import Lead
from sla_bot.rules import RuleSet
from sla_bot.rules.people import Recipient
from sla_bot.rules.select import instant_of, text_of
from sla_bot.rules.steps import Step

KINDS = {
    "warning": "first_touch.warning",
    "breach": "first_touch.breach",
    "escalation": "ladder",
    "cadence_gap": "cadence.due",
    "cadence_end": "cadence.end",
    "recycle": "recycle",
    "disqualification": "disqualification.premature",
    "resume": "pause.resume",
}


def button_version(lead: Lead) -> int:
    """What Slack buttons carry: bumped by actions, touches, owner changes and closing only,
    so a routine sweep or property update does not make every open message stale."""
    return int(lead.state.get("button_version", 0))


def owner_name(rules: RuleSet | None, lead: Lead, owner_id: str | None = None) -> str | None:
    owner_id = owner_id if owner_id is not None else lead.owner_id
    if not owner_id:
        return None
    if rules is not None:
        found = rules.find_member(owner_id=owner_id)
        if found is not None:
            return found[1].label()
    names = lead.state.get("owner_names", {})
    return names.get(owner_id) or f"owner {owner_id}"


def lead_facts(lead: Lead, rules: RuleSet | None, *, version: int | None = None) -> dict[str, Any]:
    p = lead.properties
    name = " ".join(x for x in (text_of(p.get("firstname")), text_of(p.get("lastname"))) if x)
    created = instant_of(p.get("createdate"))
    action = text_of(p.get("recent_conversion_event_name")) or text_of(p.get("lead_source"))
    return {
        "id": lead.id,
        "portal_id": lead.portal_id,
        "object_id": lead.object_id,
        "name": name or text_of(p.get("email")) or f"contact {lead.object_id}",
        "email": text_of(p.get("email")),
        "company": text_of(p.get("company")),
        "source": text_of(p.get("hs_analytics_source")) or text_of(p.get("lead_source")),
        "action": action,
        "created_at": created.isoformat() if created else None,
        "hubspot_url": (
            f"https://app.hubspot.com/contacts/{lead.portal_id}/record/0-1/{lead.object_id}"
        ),
        "owner_id": lead.owner_id,
        "owner_name": owner_name(rules, lead),
        "version": button_version(lead) if version is None else version,
    }


def recipient_dict(r: Recipient) -> dict[str, Any]:
    return {
        "role": r.role,
        "slack": r.slack,
        "email": r.email,
        "owner_id": r.owner_id,
        "name": r.name,
    }


def recipient_id(r: Recipient) -> str:
    return r.slack or r.owner_id or r.email or r.name


def touch_facts(lead: Lead, min_touches: int | None, max_touches: int | None) -> dict[str, Any]:
    history = [
        {
            "at": t["at"],
            "connect": bool(t.get("connect")),
            "kind": t.get("kind", "hubspot"),
            "owner_id": t.get("owner_id"),
        }
        for t in lead.touches
    ]
    return {"count": len(history), "min": min_touches, "max": max_touches, "history": history}


TEXTS = {
    "first_touch.warning": "First-touch deadline for {name} is close",
    "first_touch.breach": "First-touch deadline for {name} was missed",
    "ladder": "{name} is still untouched after the first-touch deadline ({step})",
    "cadence.due": "{name} is due for its next touch",
    "cadence.end": "The cadence for {name} has ended",
    "recycle": "{name} goes back to nurture: {reason}",
    "disqualification.premature": "{name} was disqualified after too few touches",
    "pause.resume": "{name} is back from its pause: time to follow up",
    "reassigned": "{name} was reassigned from {old} to {new}",
    "ack.expired": "You said you were on {name}, but no touch was logged",
}


def text(kind: str, facts: dict[str, Any], **extra: Any) -> str:
    template = TEXTS.get(kind, "{name}: " + kind)
    values = {"name": facts["name"], "reason": "", "step": "", "old": "?", "new": "?"}
    values.update({k: v for k, v in extra.items() if v is not None})
    return template.format(**values)


def names(extra: dict[str, Any]) -> dict[str, Any]:
    if "old_owner" not in extra:
        return {}
    return {"old": extra["old_owner"]["name"], "new": extra["new_owner"]["name"]}


def describe(step: Step) -> str:
    d = step.detail
    parts = [f"{step.key} due {step.due_at.isoformat()}"]
    for name in ("target", "after", "max_gap", "touches", "min_touches", "reason"):
        if d.get(name) is not None:
            parts.append(f"{name}: {d[name]}")
    return "; ".join(parts)


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
