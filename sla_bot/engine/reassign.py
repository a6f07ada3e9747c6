"""Round robin for reassignment: least recently assigned first.

The "pointer" is the time each rep was last picked (kept per portal and team in `sync_state`,
job `rr:<team>:<owner_id>`), so adding or removing a rep needs no pointer repair and two
workers reading the same times pick the same rep; ties go by the team's member order.
`pick_owner` is pure; the two functions below read and write the times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from sla_bot.db.schema import sync_state
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


def last_assignments(conn: Connection, portals: set[int]) -> dict[int, dict[str, datetime | None]]:
    """portal -> owner_id -> when round robin last gave them a lead."""
    rows = conn.execute(
        select(sync_state).where(
            sync_state.c.portal_id.in_(sorted(portals)), sync_state.c.job.like("rr:%")
        )
    ).all()
    out: dict[int, dict[str, datetime | None]] = {}
    for r in rows:
        out.setdefault(r.portal_id, {})[r.job.rsplit(":", 1)[-1]] = r.watermark
    return out


def remember_assignment(
    conn: Connection, portal_id: int, team: str, owner_id: str, now: datetime
) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {"portal_id": portal_id, "job": rr_job(team, owner_id), "watermark": now}
    stmt = dialect.insert(sync_state).values(**values, updated_at=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["portal_id", "job"], set_={"watermark": now, "updated_at": now}
        )
    )
