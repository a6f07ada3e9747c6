"""The worker job: enqueue each digest once per period, at its local time, through the outbox.

Every tick (and every worker replica) asks the same question of the rules and the clock: is a
digest due now? The answer names its period, and the outbox's unique idempotency key
(`scorecard:{portal}:{team}:{period}`, `marketing:{portal}:{digest}:{period}`) lets only one
insert win, across restarts and replicas. The content is computed when it is decided and kept
in the row, so a retry sends the very numbers that were decided.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot import outbox
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import outbox as outbox_table
from sla_bot.digests import content, schedule
from sla_bot.reports import run
from sla_bot.rules.digests import Digest
from sla_bot.rules.errors import RulesInvalid
from sla_bot.rules.ruleset import RuleSet

log = logging.getLogger(__name__)
KINDS = ("scorecard", "marketing")  # outbox kinds of digest rows (channel "slack")


@dataclass(frozen=True)
class Planned:
    digest: str
    key: str
    period: str
    enqueued: bool  # False: another worker (or an earlier tick) already decided it


def key_of(d: Digest, name: str, team: str | None, period: str) -> str:
    portal = "all" if d.portal is None else str(d.portal)
    return f"{d.kind}:{portal}:{team if d.kind == 'scorecard' else name}:{period}"


def _exists(engine: Engine, key: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(
            select(outbox_table.c.id).where(outbox_table.c.idempotency_key == key)
        ).first()
    return found is not None


def _targets(rules: RuleSet, d: Digest) -> list[tuple[str | None, str | None]]:
    """(team, calendar name) per message: one per team for a scorecard, one for marketing."""
    if d.kind == "marketing":
        return [(None, d.calendar or rules.settings.default_calendar)]
    teams = d.teams if d.teams is not None else sorted(rules.teams)
    return [(t, d.calendar or rules.calendar_name(None, rules.teams.get(t), None)) for t in teams]


def _costs(settings: Any) -> tuple[Any, str | None]:
    try:
        return run.cost_file(settings.campaign_costs, settings.rules_dir), None
    except RulesInvalid as exc:
        log.error("digest: the campaign costs file is invalid, sent without costs: %s", exc)
        return None, "the campaign costs file is invalid (see `sla-bot report --by campaign`)"


def plan_due(engine: Engine, rules: RuleSet, settings: Any, *, now: datetime) -> list[Planned]:
    """Enqueue every digest due at `now` that is not already in the outbox."""
    out: list[Planned] = []
    for name, d in rules.digests.items():
        for team, calendar_name in _targets(rules, d):
            if calendar_name is None or calendar_name not in rules.calendars:
                continue  # `sla-bot rules check` reports it; nothing to schedule by
            cal = rules.calendar(calendar_name, year=now.year)
            occ = schedule.due(d.every, cal, d.on_holiday, now)
            if occ is None:
                continue
            key = key_of(d, name, team, occ.period)
            if _exists(engine, key):
                continue
            out.append(_enqueue(engine, rules, settings, name, d, team, cal.tz, occ, key, now))
    return out


def _enqueue(
    engine: Engine,
    rules: RuleSet,
    settings: Any,
    name: str,
    d: Digest,
    team: str | None,
    tz: ZoneInfo,
    occ: schedule.Occurrence,
    key: str,
    now: datetime,
) -> Planned:
    if d.kind == "scorecard":
        assert team is not None
        payload = content.scorecard(engine, settings, d, team, rules.teams.get(team), occ, tz, now)
    else:
        costs, problem = _costs(settings)
        payload = content.marketing(engine, settings, d, occ, tz, now, costs, problem)
    payload = {"digest": name, "moved": occ.moved, **payload}
    with write_transaction(engine, background=True) as conn:
        added = outbox.enqueue(
            conn,
            key=key,
            channel="slack",
            kind=d.kind,
            payload=payload,
            portal_id=d.portal or 0,
            now=now,
            due_at=occ.due_at,
        )
    if added:
        log.info("digest %s (%s) for %s enqueued", name, key, occ.period)
    return Planned(name, key, occ.period, added)


def tick(services: Any) -> None:
    """The worker's job: enqueue what is due now (delivery is the deliver-slack job's)."""
    if services.rules is None or not services.rules.loaded:
        return
    rules = services.rules.current().ruleset
    if rules.digests:
        plan_due(services.engine, rules, services.settings, now=services.clock.now())
