"""Touches from three signals that often describe the same call (pure).

A logged call bumps `num_contacted_notes` *and* moves `notes_last_contacted`, and a touch logged
in Slack comes back from HubSpot as both once sla-bot has written the engagement. Counting every
signal would triple-count one call, so each touch remembers which signals confirmed it, and a
signal first pairs with a touch that lacks it; only an unpaired signal is a new touch:

- `notes_last_contacted` carries the engagement's own time: it pairs with the Slack touch logged
  at that very time, else with the nearest HubSpot touch within PAIR_WINDOW.
- A `num_contacted_notes` increment pairs with the nearest HubSpot touch within PAIR_WINDOW (the
  same call's other signal), else with the oldest Slack touch still waiting for its echo, however
  late the echo comes (the write-back may be delayed by backoff, a revoked token, a worker down).

Each touch records the owner at that moment (attribution) and attempt vs connect.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sla_bot.engine.state import LeadState, TouchRecord
from sla_bot.rules import Touch
from sla_bot.rules.select import instant_of, number_of

COUNT, LAST, SLACK = "num_contacted_notes", "notes_last_contacted", "slack_log"
PAIR_WINDOW = timedelta(hours=1)
SAME_INSTANT = timedelta(seconds=1)  # HubSpot keeps milliseconds; our times have microseconds
# What a rep can log with the Slack button (each is an engagement HubSpot counts as contacted).
TOUCH_KINDS = ("call", "email", "meeting", "linkedin", "voicemail")


def _nearest_hubspot(touches: list[TouchRecord], signal: str, at: datetime) -> TouchRecord | None:
    best, gap = None, PAIR_WINDOW
    for touch in touches:
        if signal in touch.signals or touch.from_slack:
            continue
        d = abs(touch.at - at)
        if d <= gap:
            best, gap = touch, d
    return best


def _awaiting_echo(touches: list[TouchRecord], signal: str, at: datetime) -> TouchRecord | None:
    """The oldest Slack touch logged by `at` that HubSpot has not echoed with `signal` yet."""
    waiting = [t for t in touches if t.from_slack and signal not in t.signals and t.at <= at]
    return min(waiting, key=lambda t: t.at, default=None)


def _confirm(touch: TouchRecord, signal: str) -> None:
    touch.signals = sorted({*touch.signals, signal})


def _new(at: datetime, signal: str, owner_id: str | None) -> TouchRecord:
    return TouchRecord(at=at, signals=[signal], owner_id=owner_id)


def observe_count(
    touches: list[TouchRecord],
    state: LeadState,
    value: Any,
    *,
    at: datetime,
    owner_id: str | None,
) -> list[TouchRecord]:
    """`num_contacted_notes` is now `value`: each increment is one touch. Returns new touches."""
    count = number_of(value)
    if count is None or not -1 < count < 1_000_000:
        return []
    before = state.hubspot_touch_count
    state.hubspot_touch_count = int(count)
    added = []
    for _ in range(max(int(count) - before, 0)):
        match = _nearest_hubspot(touches, COUNT, at) or _awaiting_echo(touches, COUNT, at)
        if match is not None:
            _confirm(match, COUNT)
            continue
        touch = _new(at, COUNT, owner_id)
        touches.append(touch)
        added.append(touch)
    return added


def observe_last_contacted(
    touches: list[TouchRecord],
    state: LeadState,
    value: Any,
    *,
    owner_id: str | None,
) -> list[TouchRecord]:
    """A newer `notes_last_contacted` is a touch at that time (unless another signal had it)."""
    at = instant_of(value)
    if at is None:
        return []
    seen = state.hubspot_last_contacted
    if seen is not None and at <= seen:
        return []
    state.hubspot_last_contacted = at
    echo = next(
        (
            t
            for t in touches
            if t.from_slack and LAST not in t.signals and abs(t.at - at) <= SAME_INSTANT
        ),
        None,
    )
    match = echo or _nearest_hubspot(touches, LAST, at)
    if match is not None:
        _confirm(match, LAST)
        return []
    touch = _new(at, LAST, owner_id)
    touches.append(touch)
    return [touch]


def log_slack(
    touches: list[TouchRecord],
    *,
    at: datetime,
    owner_id: str | None,
    kind: str,
    connect: bool,
    by: str,
    note: str = "",
) -> TouchRecord:
    """A touch logged with a Slack button; HubSpot's echo of it will pair, not add."""
    touch = TouchRecord(
        at=at,
        signals=[SLACK],
        connect=connect,
        kind=kind,
        owner_id=owner_id,
        by=by,
        note=note[:500],
    )
    touches.append(touch)
    touches.sort(key=lambda t: t.at)
    return touch


def for_timeline(touches: Iterable[TouchRecord], signals: Iterable[str]) -> list[Touch]:
    """The touches the policy counts (a touch counts if any of its signals is enabled)."""
    enabled = set(signals)
    return [Touch(t.at, connect=t.connect) for t in touches if enabled.intersection(t.signals)]
