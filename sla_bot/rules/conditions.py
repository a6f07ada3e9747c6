"""What the contact's properties said about a lead over time: connected, stopped, paused...

Conditions are evaluated over the property history (`History`), segment by segment: between two
changes of the properties a policy's conditions read, every condition has one value. That gives
each pause and stop a start and an end (a `Hold`), each disqualification a time (an occurrence),
and a connect its time. Without history (`rules simulate`), current properties hold from `at`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sla_bot.rules.policy import Policy
from sla_bot.rules.select import instant_of
from sla_bot.rules.steps import (
    BREACH,
    CADENCE_KINDS,
    CANCELLED,
    FIRST_TOUCH_KINDS,
    PAUSED,
    PREMATURE_DQ,
    RECYCLE,
    History,
    Hold,
    Step,
    Touch,
    cancel,
)

JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Disqualification:
    """A disqualifying status was set at `at` (one occurrence)."""

    at: datetime
    reasons: list[str]
    touches_by_then: int
    previous: dict[str, Any]  # the disqualifying properties' values just before


@dataclass(frozen=True)
class Facts:
    at: datetime
    connected_at: datetime | None
    stopped: list[str] | None  # the conditions that match at `at`, None if not stopped
    paused: list[str] | None
    resume_at: datetime | None  # the current pause's resume date, if it has one
    disqualified: list[str] | None
    touches_by_then: int
    holds: tuple[Hold, ...] = ()
    disqualifications: tuple[Disqualification, ...] = ()
    resumes: tuple[tuple[datetime, datetime], ...] = ()  # (pause start, follow-up date) reached

    @property
    def open_hold(self) -> Hold | None:
        return self.holds[-1] if self.holds and self.holds[-1].end is None else None


@dataclass(frozen=True)
class _Segment:
    start: datetime
    end: datetime | None  # None: the segment `at` is in
    stopped: list[str] | None
    paused: list[str] | None
    resume_at: datetime | None
    disqualified: list[str] | None
    connected: bool


def condition_properties(policy: Policy) -> set[str]:
    """Every property the policy's conditions read (their history matters)."""
    names: set[str] = set()
    for sel in (policy.stop_when, policy.touches.connected_when):
        if sel is not None:
            names |= sel.properties()
    if policy.pause is not None:
        names |= policy.pause.when.properties()
        if policy.pause.resume_property:
            names.add(policy.pause.resume_property)
    if policy.premature_disqualification is not None:
        names |= policy.premature_disqualification.when.properties()
    return names


def read_facts(
    policy: Policy,
    history: History,
    touches: Sequence[Touch],
    start: datetime,
    at: datetime,
    needed: int,
) -> Facts:
    """The conditions from `start` (the clock) to `at`. `needed`: touches a disqualification
    must come after not to be premature (a premature one that is reverted holds nothing)."""
    segments = _segments(policy, history, start, at)
    last = segments[-1]
    connected = next((t.at for t in touches if t.connect and policy.touches.logged_connects), None)
    linked = next((s.start for s in segments if s.connected), None)
    if linked is not None:
        connected = min(connected, linked) if connected else linked
    dq = policy.premature_disqualification
    disqualifications = []
    for i, seg in enumerate(segments):
        if seg.disqualified and (i == 0 or not segments[i - 1].disqualified):
            names = dq.when.properties() if dq else set()
            disqualifications.append(
                Disqualification(
                    seg.start,
                    seg.disqualified,
                    sum(1 for t in touches if t.at <= seg.start),
                    history.props_at(names, seg.start - JUST_BEFORE),
                )
            )
    reverted = {d.at for d in disqualifications if dq and dq.revert and d.touches_by_then < needed}
    holds, resumes = _holds(segments, reverted, at)
    return Facts(
        at=at,
        connected_at=connected,
        stopped=last.stopped,
        paused=last.paused,
        resume_at=last.resume_at,
        disqualified=last.disqualified,
        touches_by_then=sum(1 for t in touches if t.at <= at),
        holds=holds,
        disqualifications=tuple(disqualifications),
        resumes=resumes,
    )


def _segments(policy: Policy, history: History, start: datetime, at: datetime) -> list[_Segment]:
    names = condition_properties(policy)
    bounds = [start, *history.change_times(names, start, at)]
    pause, dq = policy.pause, policy.premature_disqualification
    out = []
    for i, b in enumerate(bounds):
        props = history.props_at(names, b)
        paused = pause.when.explain(props) if pause else None
        resume = None
        if pause and paused and pause.resume_property:
            resume = instant_of(props.get(pause.resume_property))
        connected_when = policy.touches.connected_when
        out.append(
            _Segment(
                start=b,
                end=bounds[i + 1] if i + 1 < len(bounds) else None,
                stopped=policy.stop_when.explain(props) if policy.stop_when else None,
                paused=paused,
                resume_at=resume,
                disqualified=dq.when.explain(props) if dq else None,
                connected=bool(connected_when and connected_when.matches(props)),
            )
        )
    return out


def _holds(
    segments: list[_Segment], reverted: set[datetime], at: datetime
) -> tuple[tuple[Hold, ...], tuple[tuple[datetime, datetime], ...]]:
    """Held spans (merged), and the follow-up dates that ended a pause."""
    spans: list[Hold] = []
    resumes: list[tuple[datetime, datetime]] = []
    pause_start: datetime | None = None
    dq_start: datetime | None = None
    for seg in segments:
        dq_start = (dq_start or seg.start) if seg.disqualified else None
        why = None
        end = seg.end
        if seg.stopped:
            why = "stopped: " + "; ".join(seg.stopped)
        elif seg.disqualified and dq_start not in reverted:
            why = "disqualified: " + "; ".join(seg.disqualified)
        elif seg.paused:
            why = "paused: " + "; ".join(seg.paused)
        pause_start = (pause_start or seg.start) if seg.paused else None
        dated = False
        if why and why.startswith("paused") and seg.resume_at is not None:
            if seg.resume_at <= seg.start:
                why = None  # the follow-up date has passed: the pause holds nothing any more
            elif end is None or seg.resume_at < end:
                end, dated = seg.resume_at, True
                assert pause_start is not None
                if seg.resume_at <= at or seg.end is None:
                    resumes.append((pause_start, seg.resume_at))
        if why is None:
            continue
        if spans and spans[-1].end == seg.start and not spans[-1].resumed_at_date:
            prev = spans[-1]
            joined = prev.why if prev.why == why else f"{prev.why}, then {why}"
            spans[-1] = Hold(prev.start, end, joined, dated)
        else:
            spans.append(Hold(seg.start, end, why, dated))
    return tuple(spans), tuple(resumes)


def after_connect(steps: list[Step], facts: Facts) -> list[Step]:
    """A connect ends the cadence (no more gap nudges, no recycling) and, like any touch, the
    first-touch ladder."""
    if facts.connected_at is None:
        return steps
    why = f"connected at {facts.connected_at.isoformat()}"
    ended = (*CADENCE_KINDS, *FIRST_TOUCH_KINDS)
    return [cancel(s, why, after=facts.connected_at) if s.kind in ended else s for s in steps]


def after_close(steps: list[Step], facts: Facts, *, revert: bool, needed: int) -> list[Step]:
    """Stopped, or disqualified for good, now: nothing not yet due will happen (unless the
    condition clears; then the held time is skipped and the steps come back, see heldtime.py)."""
    why = None
    if facts.stopped:
        why = "stopped: " + "; ".join(facts.stopped)
    elif facts.disqualified and not (revert and _latest_is_premature(facts, needed)):
        why = f"disqualified after {facts.touches_by_then} touches: " + "; ".join(
            facts.disqualified
        )
    if why is None:
        return steps
    hold = facts.open_hold
    since = hold.start if hold else facts.at
    return [
        s if s.kind == PREMATURE_DQ else cancel(s, why, after=since - JUST_BEFORE) for s in steps
    ]


def _latest_is_premature(facts: Facts, needed: int) -> bool:
    latest = facts.disqualifications[-1] if facts.disqualifications else None
    return latest is not None and latest.touches_by_then < needed


def hold(steps: list[Step], facts: Facts) -> list[Step]:
    """While held without an end in sight (a pause with no follow-up date), nothing at or after
    the start of the hold fires."""
    current = facts.open_hold
    if current is None or not facts.paused:
        return steps
    return [
        replace(s, state=PAUSED, why=current.why)
        if s.state != CANCELLED and s.due_at >= current.start and s.kind != PREMATURE_DQ
        else s
        for s in steps
    ]


def status(
    steps: list[Step],
    facts: Facts,
    policy: Policy,
    *,
    touched: bool,
    now: datetime | None,
    needed: int,
) -> str:
    """One word for the lead's state at `now` (None: at the end of the timeline)."""

    def happened(kind: str) -> bool:
        return any(
            s.kind == kind
            and s.state not in (CANCELLED, PAUSED)
            and (now is None or s.due_at <= now)
            for s in steps
        )

    dq = policy.premature_disqualification
    reverted = bool(dq and dq.revert) and _latest_is_premature(facts, needed)
    if facts.stopped:
        return "stopped"
    if facts.paused and (facts.open_hold or (facts.resume_at and facts.resume_at > facts.at)):
        return "paused"
    if facts.connected_at:
        return "connected"
    if happened(RECYCLE):
        return "recycled"
    if facts.disqualified and not reverted:
        return "disqualified"
    if not touched:
        return "breached" if happened(BREACH) else "awaiting_first_touch"
    return "in_cadence" if policy.cadence else "touched"
