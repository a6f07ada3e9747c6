"""What Slack buttons do: acknowledge, log a touch, snooze, reassign.

Each action is a compare-and-set: the button carries the lead's button version
(`payload.lead.version`); if the lead moved on since the message was sent (a touch, an owner
change, another button) the action is refused with "already handled". Each writes an audit row,
bumps `leads.version`, and sets `next_due_at = now` so the sweep re-decides the lead at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from sla_bot import outbox
from sla_bot.db.engine import write_transaction
from sla_bot.engine import audit
from sla_bot.engine import leads as repo
from sla_bot.engine import messages as msg
from sla_bot.engine import touches as tch
from sla_bot.engine.leads import Lead
from sla_bot.engine.owners import owner_at, set_owner
from sla_bot.engine.reassign import pick_owner
from sla_bot.engine.sweep import _remember_assignment, _round_robin
from sla_bot.rules import RuleSet
from sla_bot.rules.people import People, Recipient

SNOOZE_CAP = timedelta(hours=24)  # the rules have no snooze setting yet; see docs/engine.md
KINDS = ("call", "email", "meeting", "linkedin", "voicemail")


class ActionRefused(Exception):
    """The action cannot be done; str(exc) is shown to the user."""


@dataclass(frozen=True)
class LeadRef:
    lead_id: int
    version: int


Change = Callable[[Lead, Any], tuple[str, list[tuple[str, dict[str, Any]]]]]


def _ruleset(rules: Any) -> RuleSet | None:
    if rules is None or isinstance(rules, RuleSet):
        return rules
    loaded = rules.current() if hasattr(rules, "current") else rules
    return loaded.ruleset


def lead_summary(engine: Engine, lead_id: int, rules: Any = None) -> dict[str, Any]:
    """The payload's "lead" dict plus status, owner_id and team (for authorization)."""
    with engine.connect() as conn:
        lead = repo.get(conn, lead_id)
    if lead is None:
        raise ActionRefused("lead not found")
    ruleset = _ruleset(rules)
    team = None
    if lead.policy_snapshot:
        team = lead.policy_snapshot.get("definition", {}).get("team")
    out = msg.lead_facts(lead, ruleset)
    out.update(status=lead.status, closed_reason=lead.closed_reason, team=team)
    return out


def _act(engine: Engine, ref: LeadRef, now: datetime, change: Change) -> str:
    with write_transaction(engine, background=False) as conn:
        lead = repo.get(conn, ref.lead_id, for_update=True)
        if lead is None:
            raise ActionRefused("lead not found")
        if lead.status == "closed":
            raise ActionRefused("lead is closed")
        if msg.button_version(lead) != ref.version:
            raise ActionRefused("already handled")
        message, entries = change(lead, conn)
        lead.state["button_version"] = msg.button_version(lead) + 1
        lead.next_due_at = now
        if not repo.save(conn, lead, now=now):
            raise ActionRefused("already handled")
        assert lead.id is not None
        audit.record(conn, lead.id, entries, at=now)
    return message


def acknowledge(engine: Engine, ref: LeadRef, *, by: str, now: datetime, silence: timedelta) -> str:
    """ "I'm on it": nudges are silenced until now+silence; then, without a touch, one more."""
    until = now + silence

    def change(lead: Lead, conn: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        n = int((lead.state.get("ack") or {}).get("n", 0)) + 1
        ack = {"n": n, "by": by, "at": now.isoformat(), "until": until.isoformat()}
        lead.state["ack"] = ack
        return f"Got it: no nudges until {until:%H:%M} UTC unless no touch is logged", [
            ("ack", ack)
        ]

    return _act(engine, ref, now, change)


def log_touch(
    engine: Engine, ref: LeadRef, *, by: str, at: datetime, kind: str, outcome: str, note: str
) -> str:
    """A touch logged in Slack: counts now, and is written to HubSpot as an engagement."""
    if kind not in KINDS:
        raise ActionRefused(f"unknown touch kind {kind!r}")
    if outcome not in ("attempt", "connect"):
        raise ActionRefused(f"unknown outcome {outcome!r}")
    now = at

    def change(lead: Lead, conn: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        owner = owner_at(lead, at)
        touch = tch.log_slack(
            lead.touches,
            at=at,
            owner_id=owner,
            kind=kind,
            connect=outcome == "connect",
            by=by,
            note=note,
        )
        lead.touches.sort(key=lambda t: t["at"])
        n = len(lead.touches)
        payload = {
            "op": "create_engagement",
            "contact_id": str(lead.object_id),
            "kind": kind,
            "outcome": outcome,
            "note": note,
            "owner_id": owner,
            "at": at.isoformat(),
        }
        outbox.enqueue(
            conn,
            key=f"lead:{lead.id}:touch:{at.isoformat()}:{n}:hubspot:engagement",
            channel="hubspot",
            kind="create_engagement",
            payload=payload,
            portal_id=lead.portal_id,
            now=at,
            lead_id=lead.id,
            object_id=lead.object_id,
        )
        return f"Logged a {kind} ({outcome}) as touch {n}", [("touch", touch)]

    return _act(engine, ref, now, change)


def snooze(engine: Engine, ref: LeadRef, *, by: str, until: datetime, now: datetime) -> str:
    """Holds the owner's nudges until `until` (at most SNOOZE_CAP); the SLA clock keeps running."""
    if until <= now:
        raise ActionRefused("pick a time in the future")
    capped = min(until, now + SNOOZE_CAP)

    def change(lead: Lead, conn: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        lead.state["snooze_until"] = capped.isoformat()
        detail = {"by": by, "until": capped.isoformat(), "asked": until.isoformat()}
        note = "" if capped == until else " (the most a snooze allows)"
        return f"Snoozed until {capped:%Y-%m-%d %H:%M} UTC{note}", [("snooze", detail)]

    return _act(engine, ref, now, change)


def reassign(
    engine: Engine, rules: Any, ref: LeadRef, *, by: str, to_owner_id: str | None, now: datetime
) -> str:
    """Give the lead to `to_owner_id`, or (None) the next rep of the team in round robin."""
    ruleset = _ruleset(rules)
    assert ruleset is not None, "reassign needs the rules"

    def change(lead: Lead, conn: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        team = (lead.policy_snapshot or {}).get("definition", {}).get("team") or ""
        target = to_owner_id
        if target is None:
            target = _round_robin_pick(conn, ruleset, lead, team, now)
            if target is None:
                raise ActionRefused("nobody in the team is available")
            _remember_assignment(conn, lead.portal_id, team, target, now)
        if target == lead.owner_id:
            raise ActionRefused("that rep already owns the lead")
        old = lead.owner_id
        set_owner(lead, target, now)
        _reassigned_rows(conn, ruleset, lead, old, target, by, now)
        detail = {"by": by, "from": old, "to": target, "manual": True}
        return f"Reassigned to {msg.owner_name(ruleset, lead, target)}", [("reassigned", detail)]

    return _act(engine, ref, now, change)


def _round_robin_pick(
    conn: Any, rules: RuleSet, lead: Lead, team: str, now: datetime
) -> str | None:
    found = rules.find_member(owner_id=lead.owner_id, prefer_team=team) if lead.owner_id else None
    policy = rules.policies.get(lead.policy or "")
    if policy is None:
        return None
    people = People(rules, policy, team, found[1] if found else None, now.year)
    candidates = people.candidates(now)["candidates"]
    last = _round_robin(conn, {lead.portal_id}).get(lead.portal_id, {})
    return pick_owner(rules, team, candidates, last)


def _reassigned_rows(
    conn: Any, rules: RuleSet, lead: Lead, old: str | None, new: str, by: str, now: datetime
) -> None:
    n = len(lead.state.get("owners", []))
    facts = msg.lead_facts(lead, rules, version=msg.button_version(lead) + 1)
    people = {"old_owner": _person(rules, lead, old), "new_owner": _person(rules, lead, new)}
    text = msg.text(
        "reassigned", facts, old=people["old_owner"]["name"], new=people["new_owner"]["name"]
    )  # noqa: E501
    for person in people.values():
        rid = person["slack"] or person["owner_id"] or person["email"] or person["name"]
        payload = {
            "kind": "reassigned",
            "step_key": f"manual.{n}",
            "thread_key": f"lead:{lead.id}",
            "recipient": person,
            "lead": facts,
            "deadline": None,
            "timezone": None,
            "touches": msg.touch_facts(lead, None, None),
            "text": text,
            "detail": f"reassigned by {by}",
            "reason": None,
            **people,
        }
        outbox.enqueue(
            conn,
            key=f"lead:{lead.id}:g{lead.generation}:manual.{n}.reassigned:owner:{rid}",
            channel="slack",
            kind="reassigned",
            payload=payload,
            portal_id=lead.portal_id,
            now=now,
            lead_id=lead.id,
            object_id=lead.object_id,
        )
    outbox.enqueue(
        conn,
        key=f"lead:{lead.id}:g{lead.generation}:manual.{n}:hubspot:owner",
        channel="hubspot",
        kind="update_contact",
        payload={
            "op": "update_contact",
            "contact_id": str(lead.object_id),
            "properties": {"hubspot_owner_id": new},
        },
        portal_id=lead.portal_id,
        now=now,
        lead_id=lead.id,
        object_id=lead.object_id,
    )


def _person(rules: RuleSet, lead: Lead, owner_id: str | None) -> dict[str, Any]:
    found = rules.find_member(owner_id=owner_id) if owner_id else None
    if found is None:
        name = msg.owner_name(None, lead, owner_id) or "(no owner)"
        return msg.recipient_dict(Recipient("owner", name, owner_id=owner_id))
    m = found[1]
    return msg.recipient_dict(Recipient("owner", m.label(), m.slack, m.email, m.owner_id))
