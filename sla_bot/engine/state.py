"""A lead's typed state: what the engine remembers about it between decisions.

Stored as JSON in `leads.state` (and `leads.touches`), validated on the way in, so every field
has one name and one meaning. Migration 0004 converted the earlier untyped bag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sla_bot.clock import from_epoch_ms
from sla_bot.rules.steps import History, OwnerChange

HISTORY_DEPTH = 8  # values kept per property: enough for any pause/stop/disqualify back-and-forth
# Not kept over time: touch signals become touches, the owner has its own record (`owners`).
UNTRACKED = frozenset(
    {"num_contacted_notes", "notes_last_contacted", "lastmodifieddate", "hubspot_owner_id"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Ack(_Model):
    """ "I'm on it": first-touch and cadence nudges due before `until` are silenced; if no touch
    comes by then, the owner gets one reminder (the occurrence "ack.<n>")."""

    n: int  # the how-manieth ack of this lead (its expiry is the occurrence "ack.<n>")
    by: str
    at: datetime
    until: datetime


class Snooze(_Model):
    """The owner's DMs are held until `until` (the SLA clock keeps running)."""

    by: str
    until: datetime


class OwnerRecord(_Model):
    at: datetime
    owner_id: str | None
    by: str = "hubspot"  # hubspot | sla-bot (round robin) | slack:<user> | legacy


class TouchRecord(_Model):
    """One touch, with the signals that confirmed it (a logged call moves two properties, and a
    touch logged in Slack comes back from HubSpot as both)."""

    at: datetime
    signals: list[str]
    connect: bool = False
    kind: str = "hubspot"  # hubspot, or the kind logged in Slack (call, email, ...)
    owner_id: str | None = None  # who owned the lead at `at`
    by: str | None = None  # the Slack user who logged it
    note: str = ""

    @property
    def from_slack(self) -> bool:
        return "slack_log" in self.signals and self.by is not None


class LeadState(_Model):
    format: Literal[1] = 1
    first_seen_at: datetime | None = None
    """When the engine first heard of the contact: steps due long before are recorded, not sent."""
    decided: dict[str, str] = Field(default_factory=dict)
    """Step occurrence -> what the engine did with it (sent, silenced: ..., skipped: ...)."""
    ack: Ack | None = None
    snooze: Snooze | None = None
    button_version: int = 0
    """What Slack buttons carry; bumped only when an open message becomes outdated."""
    property_times: dict[str, int] = Field(default_factory=dict)
    """Epoch ms of the latest applied value per property (older values arriving late are stale)."""
    values: dict[str, list[tuple[int, Any]]] = Field(default_factory=dict)
    """Each property's recent values with the epoch ms they were set at, oldest first."""
    owners: list[OwnerRecord] = Field(default_factory=list)
    owner_names: dict[str, str] = Field(default_factory=dict)
    hubspot_touch_count: int = 0  # the last num_contacted_notes seen
    hubspot_last_contacted: datetime | None = None  # the last notes_last_contacted seen
    merged_into: int | None = None
    calendar: tuple[str, str | None] | None = None
    """The deadline calendar (name, time zone override) pinned when the clock started."""
    status: str | None = None
    """The timeline's word for the lead at the last decision (awaiting_first_touch, paused...)."""

    def record_value(self, name: str, value: Any, at_ms: int) -> None:
        if name in UNTRACKED:
            return
        entries = self.values.setdefault(name, [])
        entries.append((at_ms, value))
        entries.sort(key=lambda e: e[0])
        del entries[:-HISTORY_DEPTH]


def history(state: LeadState) -> History:
    """The timeline's view of the past: property values over time, owner changes, calendar."""
    values = {
        name: tuple((from_epoch_ms(ms), value) for ms, value in entries)
        for name, entries in state.values.items()
    }
    values["hubspot_owner_id"] = tuple((o.at, o.owner_id) for o in state.owners)
    owners = tuple(OwnerChange(o.at, o.owner_id, o.by) for o in state.owners)
    return History(values, owners, state.calendar)
