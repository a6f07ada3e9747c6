"""The queue of open leads, most urgent first, with the next step and when (read-only).

A lead's urgency is its SLA deadline as its timeline has it now: the first-touch deadline
while the lead waits for its first touch (past it, the lead is breached: most urgent, the
longest overdue first), then the next cadence touch. Held leads (paused, waiting for an owner)
have no deadline and come last. The next step is what sla-bot will do next and when: a nudge,
an escalation, a reassignment, the cadence's end.

Filters on columns (portal, policy, owner) run in SQL; the rest after the timeline is built,
one per open lead the SQL filters let through.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from sla_bot.db.schema import leads
from sla_bot.engine import leads as repo
from sla_bot.engine import notifications as note
from sla_bot.engine.actions import team_of
from sla_bot.engine.leads import Lead
from sla_bot.engine.pinning import pinned
from sla_bot.engine.schedule import timeline_of
from sla_bot.rules import LoadedRules, Timeline
from sla_bot.rules.steps import BREACH, CADENCE_DUE, CADENCE_END, FIRED, PENDING

FIRST_TOUCH = ("awaiting_first_touch", "breached")


@dataclass(frozen=True)
class QueueFilter:
    breached: bool = False
    due_within: timedelta | None = None  # deadline at or before now + this (overdue included)
    owner: str | None = None  # owner id, or part of the rep's name (case-insensitive)
    team: str | None = None
    policy: str | None = None
    status: str | None = None  # the timeline's word: awaiting_first_touch, breached, paused...
    portal: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class QueueItem:
    lead_id: int
    portal_id: int
    contact_id: int
    name: str
    policy: str
    team: str | None
    owner_id: str | None
    owner_name: str | None
    status: str
    deadline: datetime | None  # what the rep must meet next (first touch, next cadence touch)
    deadline_kind: str | None  # first_touch | next_touch | cadence_end
    overdue: bool
    next_step: str | None  # what sla-bot does next (step occurrence key)
    next_kind: str | None
    next_at: datetime | None
    next_who: str  # who it goes to
    touches: int
    hubspot_url: str
    version: int = 0  # the lead's button version: buttons built from the queue act on it

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("deadline", "next_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


def open_leads(
    conn: Connection, loaded: LoadedRules, now: datetime, filt: QueueFilter = QueueFilter()
) -> list[QueueItem]:
    """The queue at `now`, filtered, most urgent first."""
    query = select(leads).where(leads.c.status != "closed", leads.c.policy.is_not(None))
    if filt.portal is not None:
        query = query.where(leads.c.portal_id == filt.portal)
    if filt.policy is not None:
        query = query.where(leads.c.policy == filt.policy)
    if filt.owner is not None and filt.owner.isdigit():
        query = query.where(leads.c.owner_id == filt.owner)
    items = []
    for row in conn.execute(query):
        lead = repo.from_row(row)
        if filt.team is not None and team_of(lead) != filt.team:
            continue
        item = queue_item(lead, loaded, now)
        if item is not None and _keep(item, filt, now):
            items.append(item)
    items.sort(key=urgency)
    return items[: filt.limit] if filt.limit else items


def _keep(item: QueueItem, filt: QueueFilter, now: datetime) -> bool:
    if filt.breached and item.status != "breached":
        return False
    if filt.status is not None and item.status != filt.status:
        return False
    if filt.due_within is not None and (
        item.deadline is None or item.deadline > now + filt.due_within
    ):
        return False
    if filt.owner is not None and not filt.owner.isdigit():
        return filt.owner.lower() in (item.owner_name or "").lower()
    return True


def urgency(item: QueueItem) -> tuple[int, float, float]:
    """Breached first (longest overdue first), then by deadline, then held leads by next step."""
    never = float("inf")
    deadline = item.deadline.timestamp() if item.deadline else never
    nxt = item.next_at.timestamp() if item.next_at else never
    return (0 if item.overdue else 1 if item.deadline else 2, deadline, nxt)


def queue_item(lead: Lead, loaded: LoadedRules, now: datetime) -> QueueItem | None:
    if lead.id is None or lead.policy is None or not lead.policy_snapshot:
        return None
    rules = pinned(loaded, lead.policy_hash, lead.policy_snapshot)
    tl = timeline_of(lead, rules, now)
    if tl is None or tl.status == "ignored":
        return None
    deadline, kind = _deadline(tl)
    nxt = _next(tl, lead.state.decided)
    facts = note.lead_facts(lead, rules)
    return QueueItem(
        lead_id=lead.id,
        portal_id=lead.portal_id,
        contact_id=lead.object_id,
        name=facts["name"],
        policy=lead.policy,
        team=team_of(lead),
        owner_id=lead.owner_id,
        owner_name=facts["owner_name"],
        status=tl.status,
        deadline=deadline,
        deadline_kind=kind,
        overdue=deadline is not None and deadline <= now,
        next_step=nxt.key if nxt else None,
        next_kind=nxt.kind if nxt else None,
        next_at=nxt.due_at if nxt else None,
        next_who=", ".join(f"{r.role} {r.name}" for r in nxt.recipients) if nxt else "",
        touches=len(tl.touches),
        hubspot_url=facts["hubspot_url"],
        version=facts["version"],
    )


def _deadline(tl: Timeline) -> tuple[datetime | None, str | None]:
    if tl.status in FIRST_TOUCH:
        breach = next((s for s in tl.steps if s.kind == BREACH), None)
        return (breach.due_at, "first_touch") if breach else (None, None)
    if tl.status in ("touched", "in_cadence"):
        for kind, name in ((CADENCE_DUE, "next_touch"), (CADENCE_END, "cadence_end")):
            ahead = [s.due_at for s in tl.steps if s.kind == kind and s.state == PENDING]
            if ahead:
                return min(ahead), name
    return None, None


def _next(tl: Timeline, decided: Iterable[str]) -> Any:
    """The next step sla-bot takes: due and not decided yet (the next sweep), else pending."""
    done = set(decided)
    steps = [s for s in tl.steps if s.state in (FIRED, PENDING) and s.key not in done]
    return min(steps, key=lambda s: (s.due_at, s.key), default=None)
