"""What a decision produces: outbox rows to add, pending rows to withdraw, audit, the lead."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sla_bot.engine.leads import Lead
from sla_bot.rules import Timeline


@dataclass(frozen=True)
class OutboxRow:
    key: str
    channel: str  # slack | hubspot
    kind: str
    payload: dict[str, Any]
    due_at: datetime | None
    deliver_at: datetime
    step: str | None = None  # the step occurrence it belongs to
    recipient: str | None = None  # "<role>:<id>" for Slack rows


@dataclass(frozen=True)
class PendingRow:
    """An undelivered Slack row of the lead, as the decision sees it."""

    id: int
    kind: str
    step: str | None
    recipient: str | None  # "<role>:<id>"
    owner_id: str | None  # for owner rows: whom it was decided for


@dataclass
class Decision:
    lead: Lead  # the lead to save (a copy unless the caller asked otherwise)
    timeline: Timeline | None
    rows: list[OutboxRow] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    assigned: list[tuple[str, str]] = field(default_factory=list)  # (team, owner_id)
    withdrawn: dict[int, str] = field(default_factory=dict)  # pending row id -> why
    outcome: Any = None  # outcome_store.OutcomeChange: the facts the sweep records with it
