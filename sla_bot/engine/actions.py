"""What Slack buttons do: acknowledge, log a touch, snooze, reassign.

Each action is a compare-and-set: the button carries the lead's button version
(`payload.lead.version`); if the lead moved on since the message was sent (a touch, an owner
change, another button) the action is refused with "already handled". Each writes an audit row,
bumps `leads.version`, and sets `next_due_at = now` so the sweep re-decides the lead at once.

What an action does to a lead is pure (`ack_change`, `touch_change`, `snooze_change`,
`reassign_change`, applied by `perform`): the backtest replays recorded button presses with the
same functions (sla_bot/backtest).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from sla_bot import outbox
from sla_bot.db.engine import write_transaction
from sla_bot.engine import audit
from sla_bot.engine import leads as repo
from sla_bot.engine import notifications as note
from sla_bot.engine import touches as tch
from sla_bot.engine.effects import OutboxRow
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


@dataclass
class Changed:
    """What an action did: the reply to the user, audit entries, outbox rows to add."""

    message: str
    entries: list[tuple[str, dict[str, Any]]]
    rows: list[OutboxRow] = field(default_factory=list)


Change = Callable[[Lead], Changed]


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
    out = note.lead_facts(lead, ruleset)
    out.update(status=lead.status, closed_reason=lead.closed_reason, team=team_of(lead))
    return out


def team_of(lead: Lead) -> str | None:
    if not lead.policy_snapshot:
        return None
    return lead.policy_snapshot.get("definition", {}).get("team")


def perform(lead: Lead, now: datetime, change: Change) -> Changed:
    """Apply one action to `lead` in place (pure): refused on a closed lead; the buttons of
    open messages become outdated and the sweep re-decides the lead at once."""
    if lead.status == "closed":
        raise ActionRefused("lead is closed")
    done = change(lead)
    lead.state.button_version += 1
    lead.next_due_at = now
    return done


def _act(
    engine: Engine, ref: LeadRef, now: datetime, change: Callable[[Lead, Any], Changed]
) -> str:
    with write_transaction(engine, background=False) as conn:
        lead = repo.get(conn, ref.lead_id, for_update=True)
        if lead is None:
            raise ActionRefused("lead not found")
        if lead.status != "closed" and lead.state.button_version != ref.version:
            raise ActionRefused("already handled")
        done = perform(lead, now, lambda lead: change(lead, conn))
        if not repo.save(conn, lead, now=now):
            raise ActionRefused("already handled")
        assert lead.id is not None
        for row in done.rows:
            outbox.enqueue(
                conn,
                key=row.key,
                channel=row.channel,
                kind=row.kind,
                payload=row.payload,
                portal_id=lead.portal_id,
                now=now,
                lead_id=lead.id,
                object_id=lead.object_id,
                due_at=row.due_at,
                deliver_at=row.deliver_at,
                step=row.step,
                recipient=row.recipient,
            )
        audit.record(conn, lead.id, done.entries, at=now)
    return done.message


# --- the actions, pure ------------------------------------------------------------------------


def ack_change(lead: Lead, *, by: str, now: datetime, until: datetime) -> Changed:
    n = (lead.state.ack.n if lead.state.ack else 0) + 1
    lead.state.ack = Ack(n=n, by=by, at=now, until=until)
    detail = lead.state.ack.model_dump(mode="json")
    message = f"Got it: no nudges until {until:%H:%M} UTC unless no touch is logged"
    return Changed(message, [("ack", detail)])


def touch_change(
    lead: Lead, *, by: str, at: datetime, kind: str, outcome: str, note: str
) -> Changed:
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
    key = f"lead:{lead.id}:touch:{at.isoformat()}:{n}:hubspot:engagement"
    row = OutboxRow(key, "hubspot", "create_engagement", payload, None, at)
    entry = ("touch", touch.model_dump(mode="json", exclude_defaults=True))
    return Changed(f"Logged a {kind} ({outcome}) as touch {n}", [entry], [row])


def snooze_change(lead: Lead, *, by: str, until: datetime, now: datetime) -> Changed:
    capped = min(until, now + SNOOZE_CAP)
    lead.state.snooze = Snooze(by=by, until=capped)
    detail = {"by": by, "until": capped.isoformat(), "asked": until.isoformat()}
    most = "" if capped == until else " (the most a snooze allows)"
    return Changed(f"Snoozed until {capped:%Y-%m-%d %H:%M} UTC{most}", [("snooze", detail)])


def round_robin_target(
    rules: RuleSet, lead: Lead, now: datetime, last: Mapping[str, datetime | None]
) -> str | None:
    """The next rep of the lead's team in round robin (available now, not the owner)."""
    team = team_of(lead) or ""
    found = rules.find_member(owner_id=lead.owner_id, prefer_team=team) if lead.owner_id else None
    policy = rules.policies.get(lead.policy or "")
    if policy is None:
        return None
    people = People(rules, policy, team, found[1] if found else None, now.year)
    candidates = people.candidates(now)["candidates"]
    return pick_owner(rules, team, candidates, last)


def reassign_change(
    lead: Lead, rules: RuleSet, *, by: str, target: str, now: datetime, round_robin: bool
) -> Changed:
    """Give the lead to `target` (chosen by `by`, or picked by round robin for them)."""
    if target == lead.owner_id:
        raise ActionRefused("that rep already owns the lead")
    old = lead.owner_id
    set_owner(lead, target, now, by=f"slack:{by}")
    rows = _reassigned_rows(rules, lead, old, target, by, now)
    detail: dict[str, Any] = {"by": by, "from": old, "to": target, "manual": True}
    if round_robin:
        detail["round_robin"] = True
    message = f"Reassigned to {note.owner_name(rules, lead, target)}"
    return Changed(message, [("reassigned", detail)], rows)


def _reassigned_rows(
    rules: RuleSet, lead: Lead, old: str | None, new: str, by: str, now: datetime
) -> list[OutboxRow]:
    n = len(lead.state.owners)
    step = f"manual.{n}"
    old_r = note.owner_recipient(rules, lead, old, now)
    new_r = note.owner_recipient(rules, lead, new, now)
    rows = []
    for r in (old_r, new_r):
        payload = note.message(
            REASSIGNED,
            lead,
            rules,
            r,
            step_key=step,
            detail=f"reassigned by {by}",
            version=lead.state.button_version + 1,  # what `perform` is about to make it
            old_owner=old_r,
            new_owner=new_r,
        )
        key = f"lead:{lead.id}:{step}.reassigned:owner:{note.recipient_id(r)}"
        who = f"owner:{r.owner_id or note.recipient_id(r)}"
        rows.append(OutboxRow(key, "slack", REASSIGNED, payload, None, now, step, who))
    payload = {
        "op": "update_contact",
        "contact_id": str(lead.object_id),
        "properties": {"hubspot_owner_id": new},
    }
    key = f"lead:{lead.id}:{step}:hubspot:owner"
    rows.append(OutboxRow(key, "hubspot", "update_contact", payload, None, now, step))
    return rows


# --- the buttons ------------------------------------------------------------------------------


def acknowledge(engine: Engine, ref: LeadRef, *, by: str, now: datetime, silence: timedelta) -> str:
    """ "I'm on it": nudges are silenced until now+silence; then, without a touch, one more."""
    until = now + silence
    return _act(engine, ref, now, lambda lead, conn: ack_change(lead, by=by, now=now, until=until))


def log_touch(
    engine: Engine, ref: LeadRef, *, by: str, at: datetime, kind: str, outcome: str, note: str
) -> str:
    """A touch logged in Slack: counts now, and is written to HubSpot as an engagement."""
    if kind not in tch.TOUCH_KINDS:
        raise ActionRefused(f"unknown touch kind {kind!r}")
    if outcome not in TOUCH_OUTCOMES:
        raise ActionRefused(f"unknown outcome {outcome!r}")

    def change(lead: Lead, conn: Any) -> Changed:
        return touch_change(lead, by=by, at=at, kind=kind, outcome=outcome, note=note)

    return _act(engine, ref, at, change)


def snooze(engine: Engine, ref: LeadRef, *, by: str, until: datetime, now: datetime) -> str:
    """Holds the owner's nudges until `until` (at most SNOOZE_CAP); the SLA clock keeps running."""
    if until <= now:
        raise ActionRefused("pick a time in the future")
    return _act(
        engine, ref, now, lambda lead, conn: snooze_change(lead, by=by, until=until, now=now)
    )


def reassign(
    engine: Engine, rules: Any, ref: LeadRef, *, by: str, to_owner_id: str | None, now: datetime
) -> str:
    """Give the lead to `to_owner_id`, or (None) the next rep of the team in round robin."""
    ruleset = _ruleset(rules)
    assert ruleset is not None, "reassign needs the rules"

    def change(lead: Lead, conn: Any) -> Changed:
        target = to_owner_id
        if target is None:
            last = last_assignments(conn, {lead.portal_id}).get(lead.portal_id, {})
            target = round_robin_target(ruleset, lead, now, last)
            if target is None:
                raise ActionRefused("nobody in the team is available")
            remember_assignment(conn, lead.portal_id, team_of(lead) or "", target, now)
        return reassign_change(
            lead, ruleset, by=by, target=target, now=now, round_robin=to_owner_id is None
        )

    return _act(engine, ref, now, change)
