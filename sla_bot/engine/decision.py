"""What a decision produces: outbox rows, audit entries, round-robin picks, the lead to save."""

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


@dataclass
class Decision:
    lead: Lead  # the lead to save (a copy; the input is not modified)
    timeline: Timeline | None
    rows: list[OutboxRow] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    assigned: list[tuple[str, str]] = field(default_factory=list)  # (team, owner_id)
    cancel_kinds: list[str] = field(default_factory=list)
