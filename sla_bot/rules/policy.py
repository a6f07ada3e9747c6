"""Policy models: targets, cadence, escalation ladder, recycling, quiet hours.

Checks that need only the policy itself (ladder order, min <= max touches, a warning inside its
target) are validators here, so they are reported even when another part of the file is broken.
Checks that need other definitions (teams, calendars) are in validate.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sla_bot.rules.base import Base, Channel, compare
from sla_bot.rules.fields import (
    DurationField,
    LocalRangeField,
    PropertyValue,
    SelectorField,
    WallDurationField,
    WarnAtField,
    fail_at,
    fail_many,
)

TOUCH_SIGNALS = ("num_contacted_notes", "notes_last_contacted", "slack_log")

_ACTION_WORDS = ("notify_owner", "notify_manager", "notify_channel", "reassign")


def _action_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        if value == "reassign":
            return {"reassign": "round_robin"}
        if value in _ACTION_WORDS:
            return {value: True}
        raise fail_at(
            (),
            f"unknown action '{value}': use {', '.join(_ACTION_WORDS)}, "
            f"{{notify_channel: '#name'}} or {{update_property: {{name: value}}}}",
        )
    return value


class Action(Base):
    notify_owner: Literal[True] | None = None
    notify_manager: Literal[True] | None = None
    notify_channel: Channel | Literal[True] | None = None
    """true = the team's channel, or a channel name."""
    reassign: Literal["round_robin"] | None = None
    """Round robin within the team, skipping reps out of office or off shift."""
    update_property: dict[str, PropertyValue] | None = None
    """HubSpot properties to set, e.g. {hs_lead_status: ATTEMPTED_TO_CONTACT}."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        if len(self.model_dump(exclude_none=True)) != 1:
            raise fail_at((), "an action has exactly one key, e.g. notify_manager")
        return self

    @property
    def kind(self) -> str:
        # Read on every step of every timeline: a field scan, not a model_dump.
        return next(name for name in _ACTION_KINDS if getattr(self, name) is not None)


_ACTION_KINDS = tuple(Action.model_fields)
Actions = list[Annotated[Action, BeforeValidator(_action_shorthand)]]


def _owner_only() -> list[Action]:
    return [Action(notify_owner=True)]


class WarningRule(Base):
    at: WarnAtField
    """"80%" of the target, or "10m before" the deadline."""
    do: Actions = Field(default_factory=_owner_only)


def _warning_shorthand(value: Any) -> Any:
    return {"at": value} if isinstance(value, str | int) else value


class FirstTouch(Base):
    within: DurationField
    """Target for the first touch: "5 business minutes" follows the calendar, "5m" does not."""
    clock_starts: Literal["created", "owner_assigned"] = "created"
    on_assignment: Actions = Field(default_factory=_owner_only)
    """Who hears the moment the lead is someone's (routed, or assigned in HubSpot); [] = nobody."""
    warning: Annotated[WarningRule, BeforeValidator(_warning_shorthand)] | None = None

    @model_validator(mode="after")
    def _warning_inside(self) -> FirstTouch:
        before = self.warning.at.before if self.warning else None
        if before is None:
            return self
        if before.business and not self.within.business:
            raise fail_at(
                ("warning",),
                "a warning in business time needs a target in business time; write e.g. 10m before",
            )
        if compare(before, self.within) in (0, 1):
            raise fail_at(
                ("warning",),
                f"warning {before.text} before is not inside the target of {self.within.text}",
            )
        return self


class Cadence(Base):
    min_touches: Annotated[int, Field(ge=1)]
    max_touches: Annotated[int, Field(ge=1)] | None = None
    within: DurationField
    """Total window for the touches, from the start of the clock."""
    max_gap: DurationField | None = None
    """Longest allowed gap between two touches."""
    on_missed_gap: Actions = Field(default_factory=_owner_only)
    create_tasks: bool = False
    """Create a HubSpot task for the owner for each next touch, due when that touch is due."""

    @model_validator(mode="after")
    def _consistent(self) -> Cadence:
        if self.max_touches is not None and self.min_touches > self.max_touches:
            raise fail_at(
                ("min_touches",),
                f"min_touches ({self.min_touches}) is more than max_touches ({self.max_touches})",
            )
        if self.max_gap and compare(self.max_gap, self.within) == 1:
            raise fail_at(
                ("max_gap",),
                f"max_gap {self.max_gap.text} is longer than the whole window {self.within.text}",
            )
        return self


class Touches(Base):
    signals: list[Literal["num_contacted_notes", "notes_last_contacted", "slack_log"]] = list(
        TOUCH_SIGNALS
    )
    """Which activity counts as a touch."""
    connected_when: SelectorField | None = None
    """Properties that mean the rep reached the lead, e.g. {hs_lead_status: CONNECTED}."""
    logged_connects: bool = True
    """A touch logged in Slack with outcome "connect" counts as a connect."""


class Pause(Base):
    when: SelectorField
    resume_property: str | None = None
    """Date property that ends the pause, e.g. a follow-up date."""


class Repeat(Base):
    every: DurationField
    times: Annotated[int, Field(ge=1, le=100)]


class EscalationStep(Base):
    after: DurationField
    """Offset after the first-touch breach, e.g. 0m, "15 business minutes"."""
    do: Annotated[Actions, Field(min_length=1)]
    repeat: Repeat | None = None


class Recycle(Base):
    """When the cadence is used up without a connect: hand the lead back to nurture."""

    update_property: dict[str, PropertyValue] = {}
    reason: str
    notify_channel: Channel | Literal[True] | None = None


class Disqualification(Base):
    """A disqualifying status set before enough touches."""

    when: SelectorField
    min_touches: Annotated[int, Field(ge=1)] | None = None
    """Default: the cadence's min_touches."""
    do: Actions = Field(
        default_factory=lambda: [Action(notify_owner=True), Action(notify_manager=True)]
    )
    revert: bool = False
    """Set the properties in `when` back to their previous values."""


class QuietHours(Base):
    outside_calendar: bool = True
    """Hold DMs while the recipient's calendar is closed."""
    between: LocalRangeField | None = None
    """Also hold DMs between these local hours, e.g. "20:00-08:00"."""
    channels: bool = False
    """Hold channel posts too (the team's calendar and `between`), not only DMs."""
    out_of_office: Literal["skip", "escalate"] = "skip"
    """An owner out of office: "skip" their DMs, or "escalate": hold their DMs until they are
    back and tell the team's managers (else its channel) now, in their place."""


class Noise(Base):
    """How often one manager or channel may be pinged: batched escalations and an hourly cap."""

    batch_window: WallDurationField | None = None
    """Escalations to the same manager or channel within this window go out as one message that
    lists the leads, updated in place as more arrive, e.g. 10m; omit (or 0m) to send one each."""
    max_per_hour: Annotated[int, Field(ge=1, le=1000)] | None = None
    """At most this many messages an hour to one manager or channel; more leads fold into the
    next batch (listed there, never dropped). Omit for no cap."""

    @model_validator(mode="after")
    def _short_window(self) -> Noise:
        if self.batch_window is not None and self.batch_window.seconds > 3600:
            raise fail_at(
                ("batch_window",),
                f"batch_window {self.batch_window.text} is longer than 1h: a manager would hear "
                "about a breach too late; use e.g. 10m",
            )
        return self

    @property
    def window_seconds(self) -> int:
        return self.batch_window.seconds if self.batch_window else 0

    @property
    def active(self) -> bool:
        return bool(self.window_seconds or self.max_per_hour)


class Policy(Base):
    description: str | None = None
    team: str | None = None
    """Team for managers, channel and reassignment when the owner is in no team."""
    calendar: str | None = None
    """Force this calendar instead of the owner's."""
    first_touch: FirstTouch
    cadence: Cadence | None = None
    touches: Touches = Touches()
    stop_when: SelectorField | None = None
    pause: Pause | None = None
    escalation: list[EscalationStep] = []
    """Steps after the first-touch deadline is missed, in time order."""
    recycle: Recycle | None = None
    premature_disqualification: Disqualification | None = None
    quiet_hours: QuietHours = QuietHours()
    noise: Noise | None = None
    """Batch escalations to managers and channels, cap them per hour; a team's own wins."""

    @field_validator("escalation")
    @classmethod
    def _in_order(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        problems = [
            (
                (i, "after"),
                f"escalation step {i + 1} (after {step.after.text}) must come later "
                f"than step {i} (after {prev.after.text}): list steps in time order",
            )
            for i, (prev, step) in enumerate(zip(steps, steps[1:], strict=False), start=1)
            if step.after.seconds <= prev.after.seconds
        ]
        if problems:
            raise fail_many(problems)
        return steps

    @model_validator(mode="after")
    def _disqualification_minimum(self) -> Policy:
        if self.premature_disqualification and not (
            self.cadence or self.premature_disqualification.min_touches
        ):
            raise fail_at(
                ("premature_disqualification",),
                "set min_touches here: this policy has no cadence to take it from",
            )
        return self
