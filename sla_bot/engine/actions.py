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
from sla_bot.engine import notifications as note
from sla_bot.engine import touches as tch
from sla_bot.engine.leads import Lead
from sla_bot.engine.owners import owner_at, set_owner
from sla_bot.engine.reassign import last_assignments, pick_owner, remember_assignment
from sla_bot.engine.state import Ack, Snooze
from sla_bot.rules import RuleSet
from sla_bot.rules.people import People
from sla_bot.rules.steps import REASSIGNED, TOUCH_OUTCOMES

SNOOZE_CAP = timedelta(hours=24)  # the rules have no snooze setting yet; see docs/engine.md


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
    out = note.lead_facts(lead, ruleset)
    out.update(status=lead.status, closed_reason=lead.closed_reason, team=team)
    return out


def _act(engine: Engine, ref: LeadRef, now: datetime, change: Change) -> str:
    with write_transaction(engine, background=False) as conn:
        lead = repo.get(conn, ref.lead_id, for_update=True)
        if lead is None:
            raise ActionRefused("lead not found")
        if lead.status == "closed":
            raise ActionRefused("lead is closed")
        if lead.state.button_version != ref.version:
            raise ActionRefused("already handled")
        message, entries = change(lead, conn)
        lead.state.button_version += 1
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
        n = (lead.state.ack.n if lead.state.ack else 0) + 1
        lead.state.ack = Ack(n=n, by=by, at=now, until=until)
        detail = lead.state.ack.model_dump(mode="json")
        return f"Got it: no nudges until {until:%H:%M} UTC unless no touch is logged", [
            ("ack", detail)
        ]

    return _act(engine, ref, now, change)


def log_touch(
    engine: Engine, ref: LeadRef, *, by: str, at: datetime, kind: str, outcome: str, note: str
) -> str:
    """A touch logged in Slack: counts now, and is written to HubSpot as an engagement."""
    if kind not in tch.TOUCH_KINDS:
        raise ActionRefused(f"unknown touch kind {kind!r}")
    if outcome not in TOUCH_OUTCOMES:
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
        return f"Logged a {kind} ({outcome}) as touch {n}", [
            ("touch", touch.model_dump(mode="json", exclude_defaults=True))
        ]

    return _act(engine, ref, now, change)


def snooze(engine: Engine, ref: LeadRef, *, by: str, until: datetime, now: datetime) -> str:
    """Holds the owner's nudges until `until` (at most SNOOZE_CAP); the SLA clock keeps running."""
    if until <= now:
        raise ActionRefused("pick a time in the future")
    capped = min(until, now + SNOOZE_CAP)

    def change(lead: Lead, conn: Any) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        lead.state.snooze = Snooze(by=by, until=capped)
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
            remember_assignment(conn, lead.portal_id, team, target, now)
        if target == lead.owner_id:
            raise ActionRefused("that rep already owns the lead")
        old = lead.owner_id
        set_owner(lead, target, now, by=f"slack:{by}")
        _reassigned_rows(conn, ruleset, lead, old, target, by, now)
        detail = {"by": by, "from": old, "to": target, "manual": True}
        return f"Reassigned to {note.owner_name(ruleset, lead, target)}", [("reassigned", detail)]

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
    last = last_assignments(conn, {lead.portal_id}).get(lead.portal_id, {})
    return pick_owner(rules, team, candidates, last)


def _reassigned_rows(
    conn: Any, rules: RuleSet, lead: Lead, old: str | None, new: str, by: str, now: datetime
) -> None:
    n = len(lead.state.owners)
    step = f"manual.{n}"
    old_r = note.owner_recipient(rules, lead, old, now)
    new_r = note.owner_recipient(rules, lead, new, now)
    for r in (old_r, new_r):
        payload = note.message(
            REASSIGNED,
            lead,
            rules,
            r,
            step_key=step,
            detail=f"reassigned by {by}",
            version=lead.state.button_version + 1,  # what _act is about to make it
            old_owner=old_r,
            new_owner=new_r,
        )
        outbox.enqueue(
            conn,
            key=f"lead:{lead.id}:{step}.reassigned:owner:{note.recipient_id(r)}",
            channel="slack",
            kind=REASSIGNED,
            payload=payload,
            portal_id=lead.portal_id,
            now=now,
            lead_id=lead.id,
            object_id=lead.object_id,
            step=step,
            recipient=f"owner:{r.owner_id or note.recipient_id(r)}",
        )
    outbox.enqueue(
        conn,
        key=f"lead:{lead.id}:{step}:hubspot:owner",
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
        step=step,
    )
