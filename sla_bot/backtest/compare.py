"""Two rule sets side by side: the leads whose fate changes, each with its "why".

A fate changes when, between the baseline (`--against`) and the candidate (`--rules`), a lead
goes from breached to met (or back), is reassigned under one and not the other, is recycled
under one only, or gets a different number of premature-disqualification flags (or another
policy). The "why" is read from the two timelines at the end of the period: the first-touch
deadline and the first touch, the reassigning ladder step, the cadence's end and touch count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sla_bot.backtest.replay import Outcome
from sla_bot.backtest.report import Fate, Report
from sla_bot.engine.leads import Lead
from sla_bot.engine.pinning import pinned
from sla_bot.engine.schedule import timeline_of
from sla_bot.rules import LoadedRules, Timeline
from sla_bot.rules.steps import BREACH, CADENCE_END, LADDER


@dataclass(frozen=True)
class Run:
    """One rule set's replay: its rules, what the replay left, what it counted."""

    loaded: LoadedRules
    outcome: Outcome
    report: Report


@dataclass(frozen=True)
class FateChange:
    portal_id: int
    object_id: int
    lead_id: int | None
    baseline: str
    candidate: str
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "portal_id": self.portal_id,
            "contact_id": self.object_id,
            "lead_id": self.lead_id,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "why": self.why,
        }


def describe(fate: Fate) -> str:
    if fate.policy is None:
        return "not watched"
    parts = [fate.policy]
    if fate.breached_at is not None:
        parts.append(f"breached (deadline {_t(fate.breached_at)})")
    else:
        parts.append("first touch in time (or not due)")
    if fate.reassigned:
        parts.append(f"reassigned {fate.reassigned}x")
    if fate.recycled:
        parts.append("recycled")
    if fate.dq_flags:
        parts.append(f"{fate.dq_flags} premature-disqualification flag(s)")
    return ", ".join(parts)


def fate_changes(baseline: Run, candidate: Run, end: datetime) -> list[FateChange]:
    out = []
    keys = sorted(set(baseline.report.fates) | set(candidate.report.fates))
    for key in keys:
        a = baseline.report.fates.get(key) or Fate(*key)
        b = candidate.report.fates.get(key) or Fate(*key)
        if not a.differs(b):
            continue
        lead_a, lead_b = baseline.outcome.leads.get(key), candidate.outcome.leads.get(key)
        why = _why(a, b, _timeline(baseline, lead_a, end), _timeline(candidate, lead_b, end))
        lead_id = (lead_a or lead_b).id if (lead_a or lead_b) else None
        out.append(FateChange(key[0], key[1], lead_id, describe(a), describe(b), why))
    return out


def _timeline(run: Run, lead: Lead | None, end: datetime) -> Timeline | None:
    if lead is None or lead.policy is None or not lead.policy_snapshot:
        return None
    rules = pinned(run.loaded, lead.policy_hash, lead.policy_snapshot)
    return timeline_of(lead, rules, end)


def _t(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "none"


def _step(tl: Timeline | None, kind: str, action: str | None = None) -> Any:
    if tl is None:
        return None
    for s in tl.steps:
        if s.kind == kind and (action is None or action in s.actions):
            return s
    return None


def _why(a: Fate, b: Fate, ta: Timeline | None, tb: Timeline | None) -> str:
    parts = []
    if a.policy != b.policy:
        parts.append(f"policy {a.policy or 'none'} -> {b.policy or 'none'}")
    if (a.breached_at is None) != (b.breached_at is None):
        da, db = _step(ta, BREACH), _step(tb, BREACH)
        first = (ta or tb).touches[0].at if (ta or tb) and (ta or tb).touches else None
        parts.append(
            f"first-touch deadline {_t(da.due_at if da else None)} -> "
            f"{_t(db.due_at if db else None)}; first touch {_t(first)}"
        )
    if (a.reassigned > 0) != (b.reassigned > 0):
        ra, rb = _step(ta, LADDER, "reassign"), _step(tb, LADDER, "reassign")
        parts.append(
            f"reassigned {a.reassigned}x -> {b.reassigned}x (reassigning step "
            f"{_rung(ra)} -> {_rung(rb)})"
        )
    if a.recycled != b.recycled:
        ea, eb = _step(ta, CADENCE_END), _step(tb, CADENCE_END)
        parts.append(f"cadence end {_rung(ea)} -> {_rung(eb)}")
    if a.dq_flags != b.dq_flags:
        parts.append(f"premature-disqualification flags {a.dq_flags} -> {b.dq_flags}")
    return "; ".join(parts)


def _rung(step: Any) -> str:
    if step is None:
        return "none"
    touches = step.detail.get("touches")
    extra = f", {touches} touches" if touches is not None else ""
    return f"{step.key} due {_t(step.due_at)} ({step.state}{extra})"
