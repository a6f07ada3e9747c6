"""Touches from three signals that often describe the same call (pure).

A logged call bumps `num_contacted_notes` *and* moves `notes_last_contacted`, and a touch logged
in Slack comes back from HubSpot as both once the engagement is written. Counting every signal
would triple-count one call, so each touch remembers which signals confirmed it, and a signal
first pairs with the nearest touch within PAIR_WINDOW that lacks it; only an unpaired signal is
a new touch. Each touch records the owner at that moment (attribution) and attempt vs connect.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sla_bot.rules import Touch
from sla_bot.rules.select import instant_of, number_of

COUNT, LAST, SLACK = "num_contacted_notes", "notes_last_contacted", "slack_log"
PAIR_WINDOW = timedelta(hours=1)


def _at(touch: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(touch["at"])


def _pair(touches: list[dict[str, Any]], signal: str, at: datetime) -> bool:
    """Mark the nearest touch within the window that lacks `signal`; False if there is none."""
    best, gap = None, PAIR_WINDOW
    for touch in touches:
        if signal in touch["signals"]:
            continue
        d = abs(_at(touch) - at)
        if d <= gap:
            best, gap = touch, d
    if best is None:
        return False
    best["signals"] = sorted({*best["signals"], signal})
    return True


def _new(at: datetime, signal: str, owner_id: str | None, **extra: Any) -> dict[str, Any]:
    touch = {"at": at.isoformat(), "connect": False, "kind": "hubspot", "owner_id": owner_id}
    touch.update(extra)
    touch["signals"] = [signal]
    return touch


def observe_count(
    touches: list[dict[str, Any]],
    state: dict[str, Any],
    value: Any,
    *,
    at: datetime,
    owner_id: str | None,
) -> list[dict[str, Any]]:
    """`num_contacted_notes` is now `value`: each increment is one touch. Returns new touches."""
    count = number_of(value)
    if count is None:
        return []
    before = int(state.get("hs_count", 0))
    state["hs_count"] = int(count)
    added = []
    for _ in range(max(int(count) - before, 0)):
        if not _pair(touches, COUNT, at):
            touch = _new(at, COUNT, owner_id)
            touches.append(touch)
            added.append(touch)
    return added


def observe_last_contacted(
    touches: list[dict[str, Any]],
    state: dict[str, Any],
    value: Any,
    *,
    owner_id: str | None,
) -> list[dict[str, Any]]:
    """A newer `notes_last_contacted` is a touch at that time (unless another signal had it)."""
    at = instant_of(value)
    if at is None:
        return []
    seen = state.get("hs_last")
    if seen is not None and at <= datetime.fromisoformat(seen):
        return []
    state["hs_last"] = at.isoformat()
    if _pair(touches, LAST, at):
        return []
    touch = _new(at, LAST, owner_id)
    touches.append(touch)
    return [touch]


def log_slack(
    touches: list[dict[str, Any]],
    *,
    at: datetime,
    owner_id: str | None,
    kind: str,
    connect: bool,
    by: str,
    note: str = "",
) -> dict[str, Any]:
    """A touch logged with a Slack button; HubSpot's echo of it will pair, not add."""
    touch = _new(at, SLACK, owner_id, kind=kind, connect=connect, by=by, note=note[:500])
    touches.append(touch)
    return touch


def for_timeline(touches: Iterable[dict[str, Any]], signals: Iterable[str]) -> list[Touch]:
    """The touches the policy counts (a touch counts if any of its signals is enabled)."""
    enabled = set(signals)
    return [
        Touch(_at(t), connect=bool(t.get("connect")))
        for t in touches
        if enabled.intersection(t["signals"])
    ]
