"""The vocabulary of a lead's timeline: touches, steps, and the timeline itself (JSON-able)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sla_bot.durations import Duration
from sla_bot.rules.people import Recipient

FIRED, PENDING, CANCELLED, PAUSED = "fired", "pending", "cancelled", "paused"


@dataclass(frozen=True)
class Touch:
    """One touch by the rep; `connect` if it reached the lead."""

    at: datetime
    connect: bool = False


@dataclass(frozen=True)
class Step:
    """One thing that happens at `due_at`; `key` is stable so the engine can act on it once."""

    kind: str  # warning | breach | escalation | cadence_gap | cadence_end | recycle | ...
    key: str  # stable id within the lead, e.g. "ladder.2#r3"
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
    steps: list[Step] = field(default_factory=list)

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
