"""A lead's outcome facts (pure): what the engine saw when it decided, in the shape reports read.

The sweep records them in the transaction that writes the decision, from the decision's own
timeline and the lead it decided on, so a report counts what the engine did, never a
reconstruction from logs. One `Outcome` per lead (a row of `lead_outcomes`), plus the lead's
outcome events (touches, the breach, ladder steps sent, reassignments, lifecycle stages...).

Definitions (docs/reports.md):
- speed to first touch: from the clock start to the first touch the policy counts; business
  seconds are open time on the lead's pinned calendar minus held time, wall seconds are real time;
- `met`: the first touch came by the first-touch deadline; `breached`: the deadline passed
  without one (a later touch does not undo it); neither while the deadline is ahead, or when the
  lead closed or connected before it;
- the accountable rep: whoever owned the lead at the first touch (met), at the deadline
  (breached), else the current owner;
- the outcome: `converted` (a stop condition such as SQL or a meeting), `recycled`,
  `disqualified` (`premature: ...` when it came before the minimum touches), `deleted`,
  `merged`, `not_found`, else `open`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sla_bot.clock import from_epoch_ms
from sla_bot.engine.leads import Lead
from sla_bot.engine.notifications import contact_name
from sla_bot.engine.owners import owner_at
from sla_bot.engine.state import history
from sla_bot.increments import Increment, histogram
from sla_bot.rules import RuleSet, Timeline
from sla_bot.rules.conditions import read_facts
from sla_bot.rules.heldtime import HeldTime
from sla_bot.rules.steps import BREACH, FIRED, LADDER, PREMATURE_DQ, RECYCLE, stamp
from sla_bot.rules.timeline import touches_needed

SENT = "sent"
OPEN = "open"
FINAL = ("deleted", "merged", "not_found")
# Funnel stages after "connected": the first time `lifecyclestage` reached one of these values.
STAGES: dict[str, frozenset[str]] = {
    "qualified_at": frozenset({"salesqualifiedlead", "opportunity", "customer"}),
    "opportunity_at": frozenset({"opportunity", "customer"}),
    "customer_at": frozenset({"customer"}),
}
STAGE_PROPERTY = "lifecyclestage"
DEFAULT_CAMPAIGN_PROPERTIES = ("utm_campaign", "recent_conversion_event_name")


@dataclass(frozen=True)
class Attribution:
    """Which contact properties say where a lead came from (SLA_BOT_CAMPAIGN_PROPERTIES)."""

    campaign_properties: tuple[str, ...] = DEFAULT_CAMPAIGN_PROPERTIES
    source_property: str = "hs_analytics_source"
    latest_source_property: str = "hs_latest_source"

    @property
    def properties(self) -> tuple[str, ...]:
        """Every contact property this reads (the fetch asks HubSpot for them)."""
        return (self.source_property, self.latest_source_property, *self.campaign_properties)


@dataclass(frozen=True)
class OutcomeEvent:
    at: datetime
    kind: str  # touch | connect | breach | escalation | reassigned | stage | premature_dq | outcome
    key: str  # the occurrence: recording it again adds nothing
    owner_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One `lead_outcomes` row (without lead id and updated_at): see the module doc."""

    portal_id: int
    object_id: int
    policy: str
    started_at: datetime
    name: str | None = None
    team: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    source: str | None = None
    latest_source: str | None = None
    campaign: str | None = None
    due_at: datetime | None = None
    first_touch_at: datetime | None = None
    first_touch_owner_id: str | None = None
    business_seconds: int | None = None
    wall_seconds: int | None = None
    result: str | None = None
    late_by_seconds: int | None = None
    touches: int = 0
    connected_at: datetime | None = None
    last_touch_at: datetime | None = None
    escalations: int = 0
    escalation_level: int = 0
    reassignments: int = 0
    gap_misses: int = 0
    min_touches: int = 1
    outcome: str = OPEN
    outcome_reason: str | None = None
    outcome_at: datetime | None = None
    touches_before_outcome: int | None = None
    premature_dq: int = 0
    qualified_at: datetime | None = None
    opportunity_at: datetime | None = None
    customer_at: datetime | None = None
    connected_after_s: int | None = None
    qualified_after_s: int | None = None
    opportunity_after_s: int | None = None
    customer_after_s: int | None = None
    backfilled: int = 0
    events: tuple[OutcomeEvent, ...] = field(default=(), compare=False)

    def row(self) -> dict[str, Any]:
        """The columns (a shallow read: this runs for every decision)."""
        return {name: getattr(self, name) for name in COLUMNS}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Outcome:
        return cls(**{k: row[k] for k in COLUMNS})


def _text(value: Any, limit: int) -> str | None:
    text = "" if value is None else str(value).strip()
    return text[:limit] or None


def _stage_times(lead: Lead, previous: Outcome | None) -> dict[str, datetime | None]:
    """First time each funnel stage was reached; once recorded it stays (history is short)."""
    out: dict[str, datetime | None] = {}
    entries = lead.state.values.get(STAGE_PROPERTY, [])
    for column, values in STAGES.items():
        seen = [from_epoch_ms(ms) for ms, v in entries if str(v or "").lower() in values]
        before = getattr(previous, column) if previous is not None else None
        out[column] = min([*seen, *([before] if before else [])], default=None)
    return out


WAITS = ("connected_after_s", "qualified_after_s", "opportunity_after_s", "customer_after_s")


def stage_waits(times: list[datetime | None]) -> list[int | None]:
    """For a lead's stage times (lead, touched, connected, qualified, opportunity, customer):
    whole seconds from the latest earlier stage it had reached to each of connected, qualified,
    opportunity and customer: how long it waited before moving on. None: not reached, or no
    earlier stage came before it (e.g. qualified before its clock started)."""
    out: list[int | None] = []
    for i in range(2, len(times)):
        at, before = times[i], None
        if at is not None:
            before = max((t for t in times[:i] if t is not None and t <= at), default=None)
        out.append(None if at is None or before is None else int((at - before).total_seconds()))
    return out


def _sent(decided: Mapping[str, str], prefix: str) -> list[str]:
    return [k for k, v in decided.items() if v == SENT and k.startswith(prefix)]


def _rung(key: str) -> int:
    """ "ladder.2#r1" -> 2."""
    try:
        return int(key.split(".", 1)[1].split("#", 1)[0])
    except (IndexError, ValueError):
        return 0


def outcome_of(
    lead: Lead,
    tl: Timeline,
    rules: RuleSet,
    now: datetime,
    *,
    attribution: Attribution = Attribution(),  # noqa: B008 - frozen, shared
    previous: Outcome | None = None,
) -> Outcome | None:
    """The lead's facts after a decision at `now` (None: no policy, or no clock yet)."""
    if lead.policy is None or tl.clock_start is None or lead.policy not in rules.policies:
        return None
    policy = rules.policies[lead.policy]
    start, state = tl.clock_start, lead.state
    needed = touches_needed(policy)
    facts = tl.facts or read_facts(policy, history(state), tl.touches, start, now, needed)
    breach = tl.step(BREACH)
    first = tl.touches[0] if tl.touches else None
    values: dict[str, Any] = {"due_at": breach.due_at, "touches": len(tl.touches)}
    events: list[OutcomeEvent] = []
    records = {t.at: t for t in lead.touches}
    if first is not None:
        record = records.get(first.at)
        toucher = record.owner_id if record else owner_at(lead, first.at)
        values |= _speed(rules, tl, start, first.at, now)
        values |= {"first_touch_at": first.at, "first_touch_owner_id": toucher}
        values["last_touch_at"] = tl.touches[-1].at
    for t in tl.touches:
        record = records.get(t.at)
        kind = "connect" if t.connect else "touch"
        events.append(OutcomeEvent(t.at, kind, f"touch@{t.at.isoformat()}", _owner(record)))
    result, accountable = None, lead.owner_id
    if first is not None and first.at <= breach.due_at:
        result, accountable = "met", values["first_touch_owner_id"]
    elif breach.state == FIRED:
        result, accountable = "breached", owner_at(lead, breach.due_at)
        values["late_by_seconds"] = breach.detail.get("late_by_seconds")
        events.append(OutcomeEvent(breach.due_at, "breach", BREACH, accountable))
    values |= {"result": result, "owner_id": accountable, "connected_at": facts.connected_at}
    values["owner_name"] = _owner_name(rules, lead, accountable, policy.team)
    values |= _escalations(lead, tl, events)
    values["reassignments"] = _reassignments(lead, events)
    values |= _closing(lead, tl, policy, facts, needed, events)
    values["premature_dq"] = _premature(tl, needed, events)
    values |= _stage_times(lead, previous)
    times = [start, values.get("first_touch_at"), facts.connected_at]
    times += [values[c] for c in STAGES]
    values |= dict(zip(WAITS, stage_waits(times), strict=True))
    for ms, stage in lead.state.values.get(STAGE_PROPERTY, []):
        at = from_epoch_ms(ms)
        events.append(OutcomeEvent(at, "stage", f"stage@{ms}", None, _text(stage, 255)))
    props = lead.properties
    return Outcome(
        portal_id=lead.portal_id,
        object_id=lead.object_id,
        policy=lead.policy,
        started_at=start,
        name=_text(contact_name(props), 255),
        team=tl.team,
        source=_text(props.get(attribution.source_property), 64),
        latest_source=_text(props.get(attribution.latest_source_property), 64),
        campaign=_first_text(props, attribution.campaign_properties),
        min_touches=needed,
        events=tuple(events),
        **values,
    )


COLUMNS = tuple(f.name for f in fields(Outcome) if f.name != "events")


def _first_text(props: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    """The first of `names` the contact has a value for (the campaign)."""
    return next((t for t in (_text(props.get(n), 255) for n in names) if t), None)


def _owner(record: Any) -> str | None:
    return record.owner_id if record is not None else None


def _owner_name(rules: RuleSet, lead: Lead, owner_id: str | None, team: str | None) -> str | None:
    if not owner_id:
        return None
    found = rules.find_member(owner_id=owner_id, prefer_team=team)
    name = found[1].label() if found else lead.state.owner_names.get(owner_id)
    return _text(name, 255)


def _speed(
    rules: RuleSet, tl: Timeline, start: datetime, first: datetime, now: datetime
) -> dict[str, int]:
    """Clock start -> first touch: open time on the lead's calendar minus held time, and real
    time (whole seconds). The calendar is the one the timeline used (pinned at the clock start)."""
    business = None
    if tl.calendar_name and tl.calendar_name in rules.calendars:
        cal = rules.calendar(
            tl.calendar_name,
            year=min(start, now).year,
            last_year=max(start, now).year,
            tz=tl.timezone,
        )
        spans = [(h.start, h.end or max(h.start, now)) for h in tl.holds]
        held = HeldTime(cal, spans)
        business = int(held.elapsed(start, first, business=True).total_seconds())
    values = {"wall_seconds": int((first - start).total_seconds())}
    if business is not None:
        values["business_seconds"] = business
    return values


def _escalations(lead: Lead, tl: Timeline, events: list[OutcomeEvent]) -> dict[str, int]:
    sent = _sent(lead.state.decided, f"{LADDER}.")
    dues = {s.key: s.due_at for s in tl.steps if s.kind == LADDER}
    for key in sent:
        if key in dues:
            events.append(OutcomeEvent(dues[key], "escalation", key))
    gaps = _sent(lead.state.decided, "cadence.touch")
    return {
        "escalations": len(sent),
        "escalation_level": max((_rung(k) for k in sent), default=0),
        "gap_misses": len(gaps),
    }


def _reassignments(lead: Lead, events: list[OutcomeEvent]) -> int:
    """Owner changes from one owner to another (a first assignment is not a reassignment)."""
    owners = lead.state.owners
    n = 0
    for i, o in enumerate(owners):
        if i > 0 and owners[i - 1].owner_id is not None:
            n += 1
            key = f"owner@{o.at.isoformat()}"
            events.append(OutcomeEvent(o.at, "reassigned", key, o.owner_id, _text(o.by, 255)))
    return n


def _closing(
    lead: Lead, tl: Timeline, policy: Any, facts: Any, needed: int, events: list[OutcomeEvent]
) -> dict[str, Any]:
    status = tl.status
    outcome, reason, at = OPEN, None, None
    if status == "stopped":
        outcome, reason = "converted", "; ".join(facts.stopped or [])
        at = facts.open_hold.start if facts.open_hold else facts.at
    elif status == "disqualified" and facts.disqualifications:
        latest = facts.disqualifications[-1]
        outcome, at = "disqualified", latest.at
        reason = "; ".join(facts.disqualified or [])
        if latest.touches_by_then < needed:
            reason = f"premature: {reason}"
    elif status == "recycled":
        fired = [s.due_at for s in tl.steps if s.kind == RECYCLE and s.state == FIRED]
        outcome, at = "recycled", max(fired, default=None)
        reason = policy.recycle.reason if policy.recycle else None
    if at is None:
        return {"outcome": OPEN}
    events.append(OutcomeEvent(at, "outcome", f"outcome:{outcome}@{stamp(at)}", None, reason))
    return {
        "outcome": outcome,
        "outcome_reason": _text(reason, 255),
        "outcome_at": at,
        "touches_before_outcome": sum(1 for t in tl.touches if t.at <= at),
    }


def _premature(tl: Timeline, needed: int, events: list[OutcomeEvent]) -> int:
    fired = [s for s in tl.steps if s.kind == PREMATURE_DQ and s.state == FIRED]
    for s in fired:
        touched = s.detail.get("touches", 0)
        events.append(OutcomeEvent(s.due_at, "premature_dq", s.key, None, f"{touched}/{needed}"))
    return len(fired)


def changed(previous: Outcome | None, new: Outcome) -> bool:
    return previous is None or previous.row() != new.row()


# --- what a change means: counters, and the properties written back to HubSpot ---------------

FIRST_TOUCHES = "sla_bot_first_touches_total"
BREACHES = "sla_bot_first_touch_breaches_total"
ESCALATIONS = "sla_bot_escalations_total"
OUTCOMES = "sla_bot_lead_outcomes_total"
TIME_TO_FIRST_TOUCH = "sla_bot_time_to_first_touch_business_seconds"
TIME_BUCKETS = (60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)


def increments(
    previous: Outcome | None,
    new: Outcome,
    audit: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    live_since: datetime | None,
) -> list[Increment]:
    """Counter increments for one decision. `audit`: the decision's audit entries (a step is
    fired once per lead, so breaches and escalations count once); `live_since`: first touches
    before it happened before sla-bot knew the lead and are not counted."""
    policy = (("policy", new.policy),)
    out: list[Increment] = []
    for kind, detail in audit:
        if kind != "step.fired":
            continue
        if detail.get("kind") == BREACH:
            out.append(Increment(BREACHES, policy))
        elif detail.get("kind") == LADDER:
            step = str(detail.get("step", "")).split("#", 1)[0]
            out.append(Increment(ESCALATIONS, (*policy, ("step", step))))
    before = previous.first_touch_at if previous is not None else None
    first = new.first_touch_at
    if before is None and first is not None and (live_since is None or first >= live_since):
        result = "met" if new.result == "met" else "late"
        out.append(Increment(FIRST_TOUCHES, (*policy, ("result", result))))
        if new.business_seconds is not None:
            out += histogram(TIME_TO_FIRST_TOUCH, policy, float(new.business_seconds), TIME_BUCKETS)
    was = previous.outcome if previous is not None else OPEN
    if new.outcome != was and new.outcome != OPEN:
        out.append(Increment(OUTCOMES, (*policy, ("outcome", new.outcome))))
    return out


def hubspot_updates(previous: Outcome | None, new: Outcome) -> list[tuple[str, dict[str, Any]]]:
    """(occurrence, contact properties) to write back for this change; each occurrence is
    written once (it is part of the outbox key)."""
    from sla_bot.engine import outcome_properties as hp

    out: list[tuple[str, dict[str, Any]]] = []
    old = previous or Outcome(new.portal_id, new.object_id, new.policy, new.started_at)
    if new.first_touch_at is not None and old.first_touch_at is None:
        out.append(("outcome.first_touch", hp.first_touch(new)))
    elif new.result is not None and old.result is None:
        out.append((f"outcome.{new.result}", hp.first_touch(new)))
    if new.outcome != OPEN and new.outcome != old.outcome and new.outcome_at is not None:
        out.append((f"outcome.{new.outcome}@{stamp(new.outcome_at)}", hp.closed(new)))
    return out
