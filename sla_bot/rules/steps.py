"""The vocabulary of a lead's timeline: kinds, touches, history, steps, the timeline (JSON-able).

One name per thing that can happen to a lead: a step's `kind` is also the kind of the message it
sends and of its outbox rows, so the timeline, the engine, the Slack messages and the audit trail
speak the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sla_bot.durations import Duration
from sla_bot.rules.people import Recipient

FIRED, PENDING, CANCELLED, PAUSED = "fired", "pending", "cancelled", "paused"

# Step kinds (= message kinds). Keys name the occurrence: "ladder.2#r1",
# "disqualification.premature@20270119T140000Z"; see `occurrence`.
ASSIGNED = "lead.assigned"  # the owner is told the lead is theirs
WARNING = "first_touch.warning"
BREACH = "first_touch.breach"
LADDER = "ladder"  # a rung of the escalation ladder after the breach
CADENCE_DUE = "cadence.due"  # the next touch of the cadence is due
CADENCE_END = "cadence.end"
RECYCLE = "recycle"
PREMATURE_DQ = "disqualification.premature"
RESUME = "pause.resume"  # a pause's follow-up date has come
# Messages that are not timeline steps.
REASSIGNED = "reassigned"  # sla-bot gave the lead to another rep
ACK_EXPIRED = "ack.expired"  # "I'm on it" ran out without a touch

FIRST_TOUCH_KINDS = (WARNING, BREACH, LADDER)
TOUCH_OUTCOMES = ("attempt", "connect")  # a touch that did not reach the lead, or did
CADENCE_KINDS = (CADENCE_DUE, CADENCE_END, RECYCLE)
# Messages that ask someone to act on an open lead: they are withdrawn when the lead closes,
# connects or is held, re-targeted when the owner changes, and superseded by a newer one.
NUDGES = frozenset({ASSIGNED, WARNING, LADDER, CADENCE_DUE, RESUME, REASSIGNED, ACK_EXPIRED})


def stamp(t: datetime) -> str:
    """A compact UTC instant for occurrence keys, e.g. 20270119T140000Z."""
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def occurrence(base: str, at: datetime | None) -> str:
    """A step key for one occurrence: `base` alone, or `base@stamp` when the same step can
    happen again (a second disqualification, a cadence re-anchored at a resume date)."""
    return base if at is None else f"{base}@{stamp(at)}"


@dataclass(frozen=True)
class Touch:
    """One touch by the rep; `connect` if it reached the lead."""

    at: datetime
    connect: bool = False


@dataclass(frozen=True)
class OwnerChange:
    """Who owned the lead from `at`; `by` is "hubspot" (a person or workflow in HubSpot),
    "sla-bot" (round robin) or "slack:<user id>" (the Reassign button)."""

    at: datetime
    owner_id: str | None
    by: str = "hubspot"

    @property
    def automatic(self) -> bool:
        return self.by == "sla-bot"


Changes = Mapping[str, Sequence[tuple[datetime, Any]]]


@dataclass(frozen=True)
class Hold:
    """A span in which the lead's SLA clock stood still: paused, stopped, or disqualified and
    later reopened. `end` None: still held. `resumed_at_date`: the pause ended because its
    follow-up date came (the cadence then restarts there)."""

    start: datetime
    end: datetime | None
    why: str
    resumed_at_date: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "why": self.why,
            "resumed_at_date": self.resumed_at_date,
        }


@dataclass(frozen=True)
class History:
    """What the timeline needs to know about the past beyond the current properties.

    `values`: each property's values over time, oldest first, each holding from its time until
    the next (a property is unknown before its first entry). Conditions (pause, stop, connect,
    disqualification) are evaluated over this history, so a pause has a start and an end.
    `owners`: owner changes in time order. `calendar`: the deadline calendar (name, time zone
    override) pinned when the clock started, so neither a rules edit nor an owner change moves
    a running deadline.
    """

    values: Changes = field(default_factory=dict)
    owners: tuple[OwnerChange, ...] = ()
    calendar: tuple[str, str | None] | None = None

    @classmethod
    def current(cls, props: Mapping[str, Any], at: datetime, *, owner_since: datetime) -> History:
        """No history (rules simulate): every property holds its current value from `at`, and
        the owner has owned the lead since `owner_since` (the start of the clock)."""
        owner = props.get("hubspot_owner_id")
        owners = (OwnerChange(owner_since, str(owner)),) if owner not in (None, "") else ()
        return cls({name: ((at, value),) for name, value in props.items()}, owners)

    def value_at(self, name: str, t: datetime) -> Any:
        value = None
        for since, v in self.values.get(name, ()):
            if since > t:
                break
            value = v
        return value

    def props_at(self, names: set[str], t: datetime) -> dict[str, Any]:
        return {n: self.value_at(n, t) for n in names}

    def change_times(self, names: set[str], after: datetime, until: datetime) -> list[datetime]:
        """When any of `names` changed in (after, until], in order."""
        return sorted({t for n in names for t, _ in self.values.get(n, ()) if after < t <= until})


@dataclass(frozen=True)
class Step:
    """One thing that happens at `due_at`; `key` is stable so the engine can act on it once."""

    kind: str  # one of the kinds above
    key: str  # the occurrence: stable id within the lead, e.g. "ladder.2#r3"
    due_at: datetime
    recipients: tuple[Recipient, ...] = ()
    actions: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    state: str = FIRED
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "due_at": self.due_at.isoformat(),
            "state": self.state,
            "why": self.why,
            "actions": list(self.actions),
            "recipients": [r.to_dict() for r in self.recipients],
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class Owner:
    owner_id: str | None
    name: str
    team: str | None


@dataclass(frozen=True)
class Timeline:
    """Which policy a lead got and why, whose clock and calendar, and every step in time order."""

    portal_id: int | None
    policy: str | None
    match_explanation: str
    status: str
    owner: Owner | None = None
    team: str | None = None
    calendar_name: str | None = None
    timezone: str | None = None
    clock_start: datetime | None = None
    business_start: datetime | None = None
    now: datetime | None = None
    touches: tuple[Touch, ...] = ()
    holds: tuple[Hold, ...] = ()
    steps: list[Step] = field(default_factory=list)
    # What the conditions said over the lead's history (conditions.Facts: connect, stop,
    # disqualifications, holds), for callers that record outcomes; not part of the timeline.
    facts: Any = field(default=None, compare=False, repr=False)

    def step(self, key: str) -> Step:
        """The step with this key; KeyError if the timeline has none."""
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "portal_id": self.portal_id,
            "policy": self.policy,
            "match_explanation": self.match_explanation,
            "status": self.status,
            "owner": self.owner.__dict__ if self.owner else None,
            "team": self.team,
            "calendar": self.calendar_name,
            "timezone": self.timezone,
            "clock_start": iso(self.clock_start),
            "business_start": iso(self.business_start),
            "now": iso(self.now),
            "touches": [{"at": t.at.isoformat(), "connect": t.connect} for t in self.touches],
            "holds": [h.to_dict() for h in self.holds],
            "steps": [s.to_dict() for s in self.steps],
        }


def business_seconds(seconds: int) -> Duration:
    """A business duration of exact seconds, for fractions and differences of targets."""
    return Duration(seconds, True, "seconds", seconds, f"{seconds} business seconds")


def cancel(step: Step, why: str, *, after: datetime | None = None) -> Step:
    """Cancel a step unless it is already settled or falls due at or before `after`."""
    if step.state in (CANCELLED, PAUSED) or (after is not None and step.due_at <= after):
        return step
    return replace(step, state=CANCELLED, why=why)
