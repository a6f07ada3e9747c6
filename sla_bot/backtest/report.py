"""What a replay amounts to: counts per policy, team, rep and day, the noise forecast, fates.

`Tally` listens to a replay (it is its Observer) and counts, for what happens inside the
period: first-touch breaches, nudges (messages to the lead's owner), escalations (to managers
and channels), reassignments, recycles and premature-disqualification flags; and every message
by recipient and day, which is the noise forecast. A message withdrawn or superseded before it
was delivered reached nobody and is not counted. Days are UTC dates: of the decision for steps,
of the delivery for messages (quiet hours move a DM to the next morning).

`Fate` is what became of one lead first seen in the period (breached or met, reassigned,
recycled, flagged); `compare.py` lists the leads whose fate differs between two rule sets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sla_bot.backtest.replay import Entries, ReplayedRow
from sla_bot.engine.actions import team_of
from sla_bot.engine.leads import Lead
from sla_bot.rules import RuleSet
from sla_bot.rules.steps import BREACH, PREMATURE_DQ, RECYCLE

METRICS = (
    "leads",
    "breaches",
    "nudges",
    "escalations",
    "reassignments",
    "recycles",
    "dq_flags",
    "messages",
)
DIMENSIONS = ("policy", "team", "rep", "day")
NONE = "-"


@dataclass
class Fate:
    """What became of a lead under one rule set."""

    portal_id: int
    object_id: int
    policy: str | None = None
    breached_at: datetime | None = None  # the first-touch deadline that was missed
    reassigned: int = 0
    recycled: bool = False
    dq_flags: int = 0
    status: str = ""

    @property
    def first_touch(self) -> str:
        if self.policy is None:
            return "not watched"
        return "breached" if self.breached_at is not None else "met or not due"

    def differs(self, other: Fate) -> bool:
        return (
            self.policy != other.policy
            or (self.breached_at is None) != (other.breached_at is None)
            or (self.reassigned > 0) != (other.reassigned > 0)
            or self.recycled != other.recycled
            or self.dq_flags != other.dq_flags
        )


@dataclass
class Report:
    totals: Counter[str] = field(default_factory=Counter)
    by: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: {d: defaultdict(Counter) for d in DIMENSIONS}
    )
    recipients: dict[str, Counter[date]] = field(default_factory=lambda: defaultdict(Counter))
    roles: dict[str, str] = field(default_factory=dict)
    fates: dict[tuple[int, int], Fate] = field(default_factory=dict)

    def noise(self) -> list[dict[str, Any]]:
        """Per recipient: messages in total, on how many days, the average and busiest day."""
        out = []
        for who, days in self.recipients.items():
            if not days:
                continue
            busiest = max(days.items(), key=lambda kv: (kv[1], kv[0]))
            total = sum(days.values())
            out.append(
                {
                    "recipient": who,
                    "role": self.roles.get(who, ""),
                    "messages": total,
                    "days": len(days),
                    "per_day": round(total / len(days), 2),
                    "max_per_day": busiest[1],
                    "busiest_day": busiest[0].isoformat(),
                }
            )
        return sorted(out, key=lambda r: (-r["max_per_day"], -r["messages"], r["recipient"]))


class Tally:
    """The replay observer that fills a Report (counts only what happens in [start, end))."""

    def __init__(self, rules: RuleSet, start: datetime, end: datetime) -> None:
        self.rules, self.start, self.end = rules, start, end
        self.report = Report()
        self.seen: dict[str, set[tuple[str, int]]] = defaultdict(set)  # leads counted per group

    def _inside(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def _rep(self, owner_id: str | None) -> str:
        if not owner_id:
            return "(no owner)"
        found = self.rules.find_member(owner_id=owner_id)
        return found[1].label() if found else f"owner {owner_id}"

    def _groups(self, lead: Lead, owner: str | None, day: date) -> list[tuple[str, str]]:
        return [
            ("policy", lead.policy or NONE),
            ("team", team_of(lead) or NONE),
            ("rep", self._rep(owner)),
            ("day", day.isoformat()),
        ]

    def _count(self, groups: list[tuple[str, str]], metric: str, n: int = 1) -> None:
        self.report.totals[metric] += n
        for dim, key in groups:
            self.report.by[dim][key][metric] += n

    def changed(
        self,
        lead: Lead,
        at: datetime,
        source: str,
        entries: Entries,
        rows: list[ReplayedRow],
        owner_before: str | None,
    ) -> None:
        fate = self._fate(lead)
        for kind, detail in entries:
            if kind == "step.fired":
                step_kind = detail.get("kind")
                if step_kind == BREACH:
                    fate.breached_at = datetime.fromisoformat(detail["due_at"])
                elif step_kind == RECYCLE:
                    fate.recycled = True
                elif step_kind == PREMATURE_DQ:
                    fate.dq_flags += 1
            elif kind == "reassigned":
                fate.reassigned += 1
        fate.status = lead.state.status or lead.status
        if not self._inside(at) or lead.policy is None:
            return
        groups = self._groups(lead, owner_before, at.date())
        if source == "decide":
            self._seen(lead, groups)
        for kind, detail in entries:
            if kind == "step.fired":
                metric = {BREACH: "breaches", RECYCLE: "recycles", PREMATURE_DQ: "dq_flags"}
                name = metric.get(detail.get("kind", ""))
                if name:
                    self._count(groups, name)
            elif kind == "reassigned":
                self._count(groups, "reassignments")
        for row in rows:
            if row.channel == "slack":
                self._message(row, lead, owner_before, +1)

    def _seen(self, lead: Lead, groups: list[tuple[str, str]]) -> None:
        """A lead counts once per group it was decided in (a rep: while they owned it)."""
        lead_key = (str(lead.portal_id), lead.object_id)
        for dim, key in groups:
            marker = f"{dim}:{key}"
            if lead_key not in self.seen[marker]:
                self.seen[marker].add(lead_key)
                self.report.by[dim][key]["leads"] += 1
        if lead_key not in self.seen["*"]:
            self.seen["*"].add(lead_key)
            self.report.totals["leads"] += 1

    def cancelled(self, row: ReplayedRow, at: datetime) -> None:
        if row.channel == "slack" and row.tag is not None:
            lead, owner = row.tag
            self._message(row, lead, owner, -1)
            row.tag = None

    def _message(self, row: ReplayedRow, lead: Any, owner: str | None, n: int) -> None:
        role = (row.recipient or "").partition(":")[0] or row.payload["recipient"]["role"]
        day = row.deliver_at.date()
        groups = self._groups(lead, owner, day)
        self._count(groups, "messages", n)
        self._count(groups, "nudges" if role == "owner" else "escalations", n)
        who = row.payload.get("recipient", {}).get("name") or row.recipient or "?"
        label = f"{role}: {who}"
        self.report.recipients[label][day] += n
        if self.report.recipients[label][day] == 0:
            del self.report.recipients[label][day]
        self.report.roles[label] = role
        if n > 0:
            row.tag = (_Frozen(lead), owner)

    def _fate(self, lead: Lead) -> Fate:
        key = (lead.portal_id, lead.object_id)
        fate = self.report.fates.get(key)
        if fate is None:
            fate = Fate(lead.portal_id, lead.object_id)
            first = lead.state.first_seen_at
            if first is not None and not self._inside(first):
                return fate  # a lead from before the period: counted, but no fate listed
            self.report.fates[key] = fate
        fate.policy = lead.policy
        return fate


class _Frozen:
    """The few facts of a lead a message is counted under, as they were when it was decided."""

    __slots__ = ("policy", "policy_snapshot", "portal_id", "object_id")

    def __init__(self, lead: Lead) -> None:
        self.policy = lead.policy
        self.policy_snapshot = lead.policy_snapshot
        self.portal_id, self.object_id = lead.portal_id, lead.object_id
