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
    """The instants the sweep ran at and decided something (its audit rows)."""
    delivered: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    """Outbox key -> (decided at, sent at) of the rows the real deliverer sent: a replayed
    message decided by the same decision stops being "undelivered" when it really was sent."""
    round_robin: dict[int, dict[str, datetime | None]] = field(default_factory=dict)
    """portal -> owner -> the last round-robin assignment before the first input."""
    fetching: bool = False
    """Whether the worker read contacts from HubSpot (it then routes a new lead after reading)."""
    unknown: list[str] = field(default_factory=list)
    """What the history cannot tell, in words for the report."""
    not_replayed: dict[str, int] = field(default_factory=dict)
    """Leads left out, by reason."""
    passes: list[datetime] = field(default_factory=list, init=False)
    """The instants the worker applied events or read contacts at."""

    def __post_init__(self) -> None:
        self.inputs.sort(key=input_order)
        self.ticks = sorted(set(self.ticks))
        self.passes = sorted({i.at for i in self.inputs if not isinstance(i, Button)})

    def extend(self, inputs: list[Input]) -> None:
        """Add inputs (e.g. leads rebuilt from HubSpot), keeping time order."""
        self.inputs += inputs
        self.__post_init__()

    def leads(self) -> set[tuple[int, int]]:
        return {(i.portal_id, i.object_id) for i in self.inputs}


class Ticks:
    """When the sweep would decide a lead due at T.

    The sweep runs every second; a pass that decided something left audit rows, so its instant
    is known (`sweep`). A lead due at T is decided at the first known sweep pass at or after T,
    if there is one within `slack`; else at the first other pass of the worker (`passes`:
    applying events, reading contacts) within `slack`, because the worker sweeps right after
    those (a lead whose deletion was applied there is not decided before it); else at T itself.
    """

    def __init__(
        self, sweep: Sequence[datetime], passes: Sequence[datetime], slack: timedelta
    ) -> None:
        self.sweep, self.passes, self.slack = list(sweep), list(passes), slack

    def after(self, at: datetime) -> datetime:
        for ticks in (self.sweep, self.passes):
            i = bisect_left(ticks, at)
            if i < len(ticks) and ticks[i] - at <= self.slack:
                return ticks[i]
        return at
