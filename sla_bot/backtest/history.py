"""The recorded history a backtest replays: what reached the engine, when, and nothing it decided.

A replay under candidate rules must be fed only what does not depend on the rules: the webhook
events (applied in batches, at the instant the worker applied them), the contacts read from
HubSpot (at the instant they were read), and the buttons people pressed in Slack (at the
instant they pressed them). Everything the engine decided (messages, escalations, round-robin
picks, withdrawals) is recomputed. `ticks` are the instants the real sweep ran at, so a replay
decides at the same `now` as the worker did (see replay.py).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sla_bot.engine.events import Event

# Inputs at the same instant are taken in the worker's order: a button pressed at that instant
# came first (a request between two ticks), then apply, fetch and the sweep of the tick.
BUTTON, APPLY, FETCH, DECIDE = 0, 1, 2, 3


@dataclass(frozen=True)
class EventBatch:
    """The events of one contact applied by one apply pass, in the engine's order."""

    at: datetime
    portal_id: int
    object_id: int
    events: tuple[Event, ...]
    phase: int = APPLY


@dataclass(frozen=True)
class Fetched:
    """A contact read from HubSpot (`values` None: HubSpot no longer had it)."""

    at: datetime
    portal_id: int
    object_id: int
    values: dict[str, Any] | None
    owner_name: str | None = None
    phase: int = FETCH


@dataclass(frozen=True)
class Button:
    """A Slack button press that changed the lead: ack, snooze, touch or reassign."""

    at: datetime
    portal_id: int
    object_id: int
    kind: str
    detail: dict[str, Any]
    phase: int = BUTTON


Input = EventBatch | Fetched | Button


def input_order(item: Input) -> tuple[datetime, int, int, int]:
    return (item.at, item.phase, item.portal_id, item.object_id)


@dataclass
class History:
    """Everything a replay reads, already in time order (pure data: no database handle)."""

    inputs: list[Input]
    lead_ids: dict[tuple[int, int], int] = field(default_factory=dict)
    ticks: Sequence[datetime] = ()
    delivered: dict[str, datetime] = field(default_factory=dict)
    """Outbox key -> when the real deliverer sent it (a replayed message with the same key
    stops being "undelivered" then)."""
    round_robin: dict[int, dict[str, datetime | None]] = field(default_factory=dict)
    """portal -> owner -> the last round-robin assignment before the first input."""
    fetching: bool = False
    """Whether the worker read contacts from HubSpot (it then routes a new lead after reading)."""
    unknown: list[str] = field(default_factory=list)
    """What the history cannot tell, in words for the report."""
    not_replayed: dict[str, int] = field(default_factory=dict)
    """Leads left out, by reason."""

    def __post_init__(self) -> None:
        self.inputs.sort(key=input_order)
        self.ticks = sorted(set(self.ticks))

    def leads(self) -> set[tuple[int, int]]:
        return {(i.portal_id, i.object_id) for i in self.inputs}


class Ticks:
    """When the sweep would decide a lead due at T: at the first recorded sweep instant at or
    after T if there is one within `slack` (the worker ticked then), else at T itself (a sweep
    that ticks every second, with no recorded pass nearby, decides within that second)."""

    def __init__(self, ticks: Sequence[datetime], slack: timedelta) -> None:
        self.ticks = list(ticks)
        self.slack = slack

    def after(self, at: datetime) -> datetime:
        i = bisect_left(self.ticks, at)
        if i < len(self.ticks) and self.ticks[i] - at <= self.slack:
            return self.ticks[i]
        return at
