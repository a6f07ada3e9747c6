"""The report's numbers (pure): counts and values per group in, scorecards out.

Every number is defined once here (docs/reports.md spells them out) and every output, the CLI's
table, CSV and JSON and the web page, prints these values, so they cannot disagree:

- medians and p90 are nearest-rank (the lower median for an even count): always a time some
  lead really took, in whole seconds;
- percentages are rounded half up to one decimal, touches per lead and money to two;
- a group's leads are the cohort whose clock started in the window; each metric names the leads
  behind it (`Metric.behind`, a condition of facts.WHO), which is what the drill-down lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sla_bot.reports.costs import Costs
from sla_bot.reports.facts import Filters, Gathered, utc

STAGES = ("lead", "touched", "connected", "qualified", "opportunity", "customer")  # the funnel


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    kind: str  # count | pct | seconds | ratio | money
    sections: tuple[str, ...]  # where the table and the page show it
    behind: str  # the leads behind the number (a key of facts.WHO): the drill-down


SPEED, SLA, FOLLOW, FUNNEL, COSTS = (
    "Speed to lead",
    "SLA compliance",
    "Follow-through",
    "Funnel",
    "Costs",
)
METRICS: tuple[Metric, ...] = (
    Metric("leads", "leads", "count", (SPEED, FUNNEL), "all"),
    Metric("touched", "touched", "count", (SPEED, FUNNEL), "touched"),
    Metric("business_median_s", "median (business)", "seconds", (SPEED,), "touched"),
    Metric("business_p90_s", "p90 (business)", "seconds", (SPEED,), "touched"),
    Metric("wall_median_s", "median (wall clock)", "seconds", (SPEED,), "touched"),
    Metric("wall_p90_s", "p90 (wall clock)", "seconds", (SPEED,), "touched"),
    Metric("within_target_pct", "% within target", "pct", (SPEED,), "touched"),
    Metric("met", "met", "count", (SLA,), "met"),
    Metric("breached", "breached", "count", (SLA,), "breached"),
    Metric("pending", "not decided", "count", (SLA,), "pending"),
    Metric("compliance_pct", "% compliance", "pct", (SLA,), "decided"),
    Metric("touches", "touches", "count", (FOLLOW,), "all"),
    Metric("touches_per_lead", "touches/lead", "ratio", (FOLLOW,), "all"),
    Metric("connected", "connected", "count", (FOLLOW, FUNNEL), "connected"),
    Metric("connect_rate_pct", "% connect rate", "pct", (FOLLOW,), "touched"),
    Metric("closed_unconverted", "disqualified/recycled", "count", (FOLLOW,), "unconverted"),
    Metric("min_touches_first", "with min touches", "count", (FOLLOW,), "first"),
    Metric("min_touches_first_pct", "% with min touches", "pct", (FOLLOW,), "unconverted"),
    Metric("premature_dq", "premature DQ", "count", (FOLLOW,), "premature"),
    *(Metric(stage, stage, "count", (FUNNEL,), stage) for stage in STAGES[3:]),
    *(
        Metric(f"{stage}_after_s", f"median to {stage}", "seconds", (FUNNEL,), stage)
        for stage in STAGES[1:]
    ),
)
COST_METRICS: tuple[Metric, ...] = (
    Metric("spend", "spend", "money", (COSTS,), "all"),
    Metric("cost_per_lead", "per lead", "money", (COSTS,), "all"),
    Metric("cost_per_qualified", "per qualified", "money", (COSTS,), "qualified"),
    Metric("cost_per_opportunity", "per opportunity", "money", (COSTS,), "opportunity"),
    Metric("cost_per_customer", "per customer", "money", (COSTS,), "customer"),
)
BY_KEY = {m.key: m for m in (*METRICS, *COST_METRICS)}


@dataclass
class Group:
    key: str
    label: str
    values: dict[str, Any]


@dataclass
class Report:
    filters: Filters
    metrics: tuple[Metric, ...]
    groups: list[Group]
    total: Group
    premature: list[dict[str, Any]]
    backfilled: int  # leads whose facts came from the audit trail (no business time)
    costs_note: str | None = None


# --- exact arithmetic ---------------------------------------------------------------------------


def nearest_rank(values: Sequence[int], percent: int) -> int | None:
    """The nearest-rank percentile: the smallest value with at least `percent`% at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max((len(ordered) * percent + 99) // 100, 1) - 1]


def percent(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part * 100) / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def ratio(part: int | Decimal, whole: int, places: str = "0.01") -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal(places), ROUND_HALF_UP)


# --- one group ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """A group's counts and the values its medians need (several groups add up to a total)."""

    counts: dict[str, int] = field(default_factory=dict)
    business: list[int] = field(default_factory=list)
    wall: list[int] = field(default_factory=list)
    waits: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, g: Gathered) -> Tally:
        # Waiting to be touched is the wall-clock speed; the later waits are recorded facts.
        waits = {"touched": list(g.wall), **{s: list(v) for s, v in g.waits.items()}}
        return cls(dict(g.counts), list(g.business), list(g.wall), waits)

    @classmethod
    def merged(cls, parts: Iterable[Tally]) -> Tally:
        out = cls(waits={stage: [] for stage in STAGES[1:]})
        for part in parts:
            for name, n in part.counts.items():
                out.counts[name] = out.counts.get(name, 0) + n
            out.business += part.business
            out.wall += part.wall
            for stage, values in part.waits.items():
                out.waits[stage] += values
        return out

    def values(self, spend: Decimal | None = None) -> dict[str, Any]:
        c = {"all": 0, "touches": 0, **self.counts}
        get = lambda k: c.get(k, 0)  # noqa: E731
        n, touched, met, breached = get("all"), get("touched"), get("met"), get("breached")
        values: dict[str, Any] = {
            "leads": n,
            "touched": touched,
            "business_median_s": nearest_rank(self.business, 50),
            "business_p90_s": nearest_rank(self.business, 90),
            "wall_median_s": nearest_rank(self.wall, 50),
            "wall_p90_s": nearest_rank(self.wall, 90),
            "within_target_pct": percent(get("met_touched"), touched),
            "met": met,
            "breached": breached,
            "pending": get("pending"),
            "compliance_pct": percent(met, met + breached),
            "touches": get("touches"),
            "touches_per_lead": ratio(get("touches"), n),
            "connected": get("connected"),
            "connect_rate_pct": percent(get("connected_touched"), touched),
            "closed_unconverted": get("unconverted"),
            "min_touches_first": get("first"),
            "min_touches_first_pct": percent(get("first"), get("unconverted")),
            "premature_dq": get("premature"),
            "qualified": get("qualified"),
            "opportunity": get("opportunity"),
            "customer": get("customer"),
        }
        for stage in STAGES[1:]:
            values[f"{stage}_after_s"] = nearest_rank(self.waits.get(stage, []), 50)
        if spend is not None:
            values |= {
                "spend": spend.quantize(Decimal("0.01"), ROUND_HALF_UP),
                "cost_per_lead": ratio(spend, n),
                "cost_per_qualified": ratio(spend, values["qualified"]),
                "cost_per_opportunity": ratio(spend, values["opportunity"]),
                "cost_per_customer": ratio(spend, values["customer"]),
            }
        return values


# --- the report -----------------------------------------------------------------------------------


def build(
    gathered: Mapping[str, Gathered],
    f: Filters,
    *,
    costs: Costs | None = None,
    premature: Sequence[Any] = (),
) -> Report:
    """The report: one group per value of `f.by` (sorted; weeks in order), and the total."""
    tallies = {key: Tally.of(g) for key, g in gathered.items()}
    labels = {key: g.label for key, g in gathered.items()}
    with_costs = costs is not None and f.by == "campaign"
    spends: dict[str, Decimal] = {}
    if with_costs:
        assert costs is not None
        spends = costs.spend_by_campaign(f.since, f.until, f.tz, portal=f.portal)
        for campaign in spends:
            if campaign not in tallies:
                tallies[campaign], labels[campaign] = Tally(), campaign
    groups = [
        Group(key, labels[key], t.values(spends.get(key, Decimal(0)) if with_costs else None))
        for key, t in tallies.items()
    ]
    if f.by == "week":
        groups.sort(key=lambda g: g.key)
    else:
        groups.sort(key=lambda g: (g.key == "", g.label.lower(), g.key))
    total_spend = sum(spends.values(), Decimal(0)) if with_costs else None
    total = Group("", "all", Tally.merged(tallies.values()).values(total_spend))
    return Report(
        filters=f,
        metrics=(*METRICS, *COST_METRICS) if with_costs else METRICS,
        groups=groups,
        total=total,
        premature=premature_list(premature),
        backfilled=sum(t.counts.get("backfilled", 0) for t in tallies.values()),
        costs_note=None if costs is None or with_costs else "costs apply to --by campaign",
    )


def premature_list(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Every premature disqualification, by name: who, whose, when, with how few touches."""
    out = []
    for e in events:
        touches, _, needed = (e.detail or "0/0").partition("/")
        out.append(
            {
                "portal_id": e.portal_id,
                "contact_id": e.object_id,
                "name": e.name or f"contact {e.object_id}",
                "rep": e.owner_name or (f"owner {e.owner_id}" if e.owner_id else "-"),
                "at": utc(e.at),
                "touches": int(touches or 0),
                "min_touches": int(needed or e.min_touches),
            }
        )
    return out
