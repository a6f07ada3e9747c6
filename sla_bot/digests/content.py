"""What a digest says: numbers from the report code (sla_bot.reports), never computed again.

A scorecard is `sla-bot report --by rep --team T` over the covered week (and the week before,
for "against last week"); the marketing digest is `--by source` and `--by campaign` (with the
campaign costs file) over the same week. The payload carries each number twice: `values` as
the report's JSON prints it, `shown` as its table prints it (what Slack shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from sla_bot.digests.schedule import Occurrence
from sla_bot.reports import aggregate, formats, links, run
from sla_bot.reports.costs import Costs
from sla_bot.reports.facts import Filters, utc
from sla_bot.rules.digests import Digest
from sla_bot.rules.model import Team

SCORECARD = (
    "leads",
    "touched",
    "business_median_s",
    "wall_median_s",
    "within_target_pct",
    "met",
    "breached",
    "pending",
    "touches_per_lead",
    "premature_dq",
)
MARKETING = (
    "leads",
    "business_median_s",
    "wall_median_s",
    "connect_rate_pct",
    "min_touches_first_pct",
    "premature_dq",
)
COSTS = ("spend", "cost_per_lead", "cost_per_qualified")
LONGEST = 3
LIST_LIMIT = 15  # names listed per list in one Slack message; the rest are counted


def numbers(group: aggregate.Group, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """A group's values as the report's JSON has them, and as its table shows them."""
    keys = [k for k in keys if k in aggregate.BY_KEY]
    return {
        "label": group.label,
        "key": group.key,
        "values": {k: formats.plain(group.values.get(k)) for k in keys},
        "shown": {k: formats.shown(aggregate.BY_KEY[k], group.values.get(k)) for k in keys},
    }


def _window(occ: Occurrence, tz: ZoneInfo) -> dict[str, str]:
    return {
        "period": occ.period,
        "since": occ.since.isoformat(),
        "until": occ.until.isoformat(),
        "timezone": tz.key,
        "days": f"{occ.since.astimezone(tz):%a %b %d} - "
        f"{(occ.until - timedelta(seconds=1)).astimezone(tz):%a %b %d, %Y}",
    }


def link(
    settings: Any, d: Digest, occ: Occurrence, tz: ZoneInfo, now: datetime, **params: str
) -> str | None:
    """A signed link to the same report on the /reports page (None without a secret key)."""
    query = {
        "since": occ.since.astimezone(tz).date().isoformat(),
        "until": occ.until.astimezone(tz).date().isoformat(),
        "tz": tz.key,
        **params,
    }
    try:
        return links.signed_url(
            settings,
            now=now,
            lifetime=timedelta(days=d.link_expires_days),
            params=query,
            portal=d.portal,
        )
    except ValueError:
        return None


def recipients(d: Digest, team: Team | None) -> list[dict[str, Any]]:
    if d.kind == "marketing":
        return [{"role": "channel", "name": d.channel, "slack": d.channel}]
    if d.to == "managers":
        managers = team.managers if team else []
        return [
            {
                k: v
                for k, v in {
                    "role": "manager",
                    "name": p.label(),
                    "email": p.email,
                    "slack": p.slack,
                    "owner_id": p.owner_id,
                }.items()
                if v is not None
            }
            for p in managers
        ]
    channel = team.channel if d.to == "team_channel" and team else d.to
    return [{"role": "channel", "name": channel, "slack": channel}]


def longest_waits(rows: Sequence[Any], now: datetime, n: int = LONGEST) -> list[dict[str, Any]]:
    """The leads that waited longest for a first touch: until it; without one, until the lead
    was closed (recycled, disqualified...) or, if still open, until now."""
    waits = []
    for r in rows:
        touched = r.first_touch_at is not None
        end = utc(r.outcome_at) if r.outcome_at is not None else now
        seconds = r.wall_seconds if touched else int((end - utc(r.started_at)).total_seconds())
        if seconds is None:
            continue
        waits.append(
            {
                "name": r.name or f"contact {r.object_id}",
                "rep": r.owner_name or (f"owner {r.owner_id}" if r.owner_id else "(no owner)"),
                "portal_id": r.portal_id,
                "contact_id": r.object_id,
                "waited_s": max(seconds, 0),
                "waited": formats.duration(max(seconds, 0)),
                "touched": touched,
                "open": r.outcome_at is None,
            }
        )
    waits.sort(key=lambda w: (-w["waited_s"], w["portal_id"], w["contact_id"]))
    return waits[:n]


def scorecard(
    engine: Engine,
    settings: Any,
    d: Digest,
    team_name: str,
    team: Team | None,
    occ: Occurrence,
    tz: ZoneInfo,
    now: datetime,
) -> dict[str, Any]:
    f = Filters(by="rep", since=occ.since, until=occ.until, portal=d.portal, tz=tz, team=team_name)
    this = run.report(engine, f)
    before = run.report(engine, replace(f, since=occ.previous_since, until=occ.since))
    rows = run.leads(engine, f, None, "leads")
    return {
        "kind": "scorecard",
        "team": team_name,
        "portal": d.portal,
        **_window(occ, tz),
        "recipients": recipients(d, team),
        "total": numbers(this.total, SCORECARD),
        "previous": numbers(before.total, SCORECARD),
        "reps": [numbers(g, SCORECARD) for g in this.groups],
        "longest": longest_waits(rows, now),
        "link": link(settings, d, occ, tz, now, by="rep", team=team_name),
    }


def _listed(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"items": [dict(i) for i in items[:LIST_LIMIT]], "more": max(len(items) - LIST_LIMIT, 0)}


def marketing(
    engine: Engine,
    settings: Any,
    d: Digest,
    occ: Occurrence,
    tz: ZoneInfo,
    now: datetime,
    costs: Costs | None,
    costs_problem: str | None = None,
) -> dict[str, Any]:
    f = Filters(by="source", since=occ.since, until=occ.until, portal=d.portal, tz=tz)
    by_source = run.report(engine, f)
    by_campaign = run.report(engine, replace(f, by="campaign"), cost_file=costs)
    keys = (*MARKETING, *(COSTS if costs is not None else ()))
    recycled = [
        {
            "name": r.name or f"contact {r.object_id}",
            "rep": r.owner_name or (f"owner {r.owner_id}" if r.owner_id else "(no owner)"),
            "reason": r.outcome_reason or "(no reason given)",
            "source": r.source or "(unknown)",
            "campaign": r.campaign or "(none)",
            "touches": r.touches,
        }
        for r in run.leads(engine, f, None, "closed_unconverted")
        if r.outcome == "recycled"
    ]
    premature = [
        {
            "name": p["name"],
            "rep": p["rep"],
            "touches": p["touches"],
            "min_touches": p["min_touches"],
            "at": p["at"].isoformat(),
        }
        for p in by_source.premature
    ]
    return {
        "kind": "marketing",
        "portal": d.portal,
        **_window(occ, tz),
        "recipients": recipients(d, None),
        "sources": [numbers(g, MARKETING) for g in [*by_source.groups, by_source.total]],
        "campaigns": [numbers(g, keys) for g in [*by_campaign.groups, by_campaign.total]],
        "costs": costs is not None,
        "costs_problem": costs_problem,
        "recycled": _listed(recycled),
        "premature": _listed(premature),
        "link": link(settings, d, occ, tz, now, by="campaign"),
    }
