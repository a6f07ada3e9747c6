"""Round robin for reassignment: least recently assigned first (pure).

The "pointer" is the time each rep was last picked (kept per portal and team in `sync_state`,
job `rr:<team>:<owner_id>`), so adding or removing a rep needs no pointer repair and two
workers reading the same times pick the same rep; ties go by the team's member order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sla_bot.rules import RuleSet

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def pick_owner(
    rules: RuleSet,
    team: str,
    candidates: Sequence[str],
    last_assigned: Mapping[str, datetime | None],
) -> str | None:
    """The owner id to give the lead to; `candidates` are member labels from the timeline
    (already without the current owner and reps out of office or off shift)."""
    t = rules.teams.get(team)
    if t is None:
        return None
    wanted = set(candidates)
    pool = [(i, m.owner_id) for i, m in enumerate(t.members) if m.label() in wanted and m.owner_id]
    if not pool:
        return None
    return min(pool, key=lambda p: (last_assigned.get(p[1] or "") or NEVER, p[0]))[1]


def rr_job(team: str, owner_id: str) -> str:
    return f"rr:{team}:{owner_id}"[:64]
