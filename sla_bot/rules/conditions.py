"""What the contact's properties say about a lead at one moment: connected, stopped, paused...

The timeline only knows the current properties, not their history, so each condition is taken
to hold from `at`: the caller's `now`, or without one the latest known fact (the last touch,
else the start of the clock). Steps due after `at` are then cancelled or held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sla_bot.rules.policy import Policy
from sla_bot.rules.select import Props, instant_of
from sla_bot.rules.steps import CANCELLED, PAUSED, Step, Touch, cancel

CADENCE_KINDS = ("cadence_gap", "cadence_end", "recycle")


@dataclass(frozen=True)
class Facts:
    at: datetime
    connected_at: datetime | None
    stopped: list[str] | None  # the conditions that matched, None if not stopped
    paused: list[str] | None
    resume_at: datetime | None  # a pause's resume date, if it has one
    disqualified: list[str] | None
    touches_by_then: int


def read_facts(policy: Policy, props: Props, touches: Sequence[Touch], at: datetime) -> Facts:
    connected = next((t.at for t in touches if t.connect and policy.touches.logged_connects), None)
    if policy.touches.connected_when and policy.touches.connected_when.matches(props):
        connected = min(connected, at) if connected else at
    pause = policy.pause
    paused = pause.when.explain(props) if pause else None
    resume = None
    if pause and paused and pause.resume_property:
        resume = instant_of(props.get(pause.resume_property))
    dq = policy.premature_disqualification
    return Facts(
        at=at,
        connected_at=connected,
        stopped=policy.stop_when.explain(props) if policy.stop_when else None,
        paused=paused,
        resume_at=resume,
        disqualified=dq.when.explain(props) if dq else None,
        touches_by_then=sum(1 for t in touches if t.at <= at),
    )


def after_connect(steps: list[Step], facts: Facts) -> list[Step]:
    """A connect ends the cadence: no more gap nudges, no recycling."""
    if facts.connected_at is None:
        return steps
    why = f"connected at {facts.connected_at.isoformat()}"
    return [
        cancel(s, why, after=facts.connected_at) if s.kind in CADENCE_KINDS else s for s in steps
    ]


def after_stop(steps: list[Step], facts: Facts) -> list[Step]:
    if not facts.stopped:
        return steps
    why = "stopped: " + "; ".join(facts.stopped)
    return [cancel(s, why, after=facts.at) for s in steps]


def hold(steps: list[Step], facts: Facts) -> list[Step]:
    """While paused nothing fires; a resume date restarts the cadence, so those steps stay."""
    if not facts.paused:
        return steps
    why = "paused: " + "; ".join(facts.paused)
    keep = CADENCE_KINDS if facts.resume_at else ()
    return [
        replace(s, state=PAUSED, why=why)
        if s.state != CANCELLED and s.due_at > facts.at and s.kind not in keep
        else s
        for s in steps
    ]


def after_disqualification(
    steps: list[Step], facts: Facts, needed: int, revert: bool
) -> list[Step]:
    """A disqualified lead is done, unless the status is reverted because it came too early."""
    if not facts.disqualified or (revert and facts.touches_by_then < needed):
        return steps
    why = f"disqualified after {facts.touches_by_then} touches: " + "; ".join(facts.disqualified)
    return [s if s.kind == "disqualification" else cancel(s, why, after=facts.at) for s in steps]


def status(
    steps: list[Step], facts: Facts, policy: Policy, *, touched: bool, now: datetime | None
) -> str:
    """One word for the lead's state at `now` (None: at the end of the timeline)."""
    by_key = {s.key: s for s in steps}

    def happened(key: str) -> bool:
        step = by_key.get(key)
        live = step is not None and step.state not in (CANCELLED, PAUSED)
        return live and (now is None or step.due_at <= now)  # type: ignore[union-attr]

    dq = policy.premature_disqualification
    reverted = dq is not None and dq.revert and "disqualification.premature" in by_key
    if facts.stopped:
        return "stopped"
    if facts.paused:
        return "paused"
    if facts.connected_at:
        return "connected"
    if happened("recycle"):
        return "recycled"
    if facts.disqualified and not reverted:
        return "disqualified"
    if not touched:
        return "breached" if happened("first_touch.breach") else "awaiting_first_touch"
    return "in_cadence" if policy.cadence else "touched"
