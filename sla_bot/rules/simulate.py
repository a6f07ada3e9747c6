"""`rules simulate`: read a lead and touches, print its timeline as a table or JSON.

Times are shown twice, in UTC and in the owner's local time, because reps and managers think in
local time while logs and the database speak UTC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sla_bot.rules.people import Recipient, noise_for
from sla_bot.rules.ruleset import RuleSet
from sla_bot.rules.steps import (
    BREACH,
    CADENCE_END,
    PREMATURE_DQ,
    RECYCLE,
    TOUCH_OUTCOMES,
    History,
    OwnerChange,
)
from sla_bot.rules.timeline import Step, Timeline, Touch


class InputError(ValueError):
    """Bad simulate input (lead file, touch list, --at); the message says what was expected."""


def parse_time(text: str, what: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{what}: '{text}' is not an ISO time like 2027-01-19T13:00:00Z") from None
    if t.tzinfo is None:
        raise InputError(f"{what}: '{text}' has no time zone; add Z (UTC) or an offset")
    return t


def parse_touches(text: str) -> list[Touch]:
    """`T1,T2:connect,...` where each T is an ISO time."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        when, _, kind = item.rpartition(":")
        if kind in TOUCH_OUTCOMES and when:
            out.append(Touch(parse_time(when, "--touches"), connect=kind == "connect"))
        else:
            out.append(Touch(parse_time(item, "--touches")))
    return out


@dataclass(frozen=True)
class LeadFile:
    """What `--lead` gave: contact properties, and optionally what `lead show --json` exports
    under "simulate" (touches, property history, owner changes, pinned calendar, policy)."""

    properties: dict[str, Any]
    portal_id: int | None
    touches: list[Touch]
    history: History | None
    policy: str | None


def read_lead(path: Path) -> LeadFile:
    """Contact properties from a JSON file; HubSpot's {"properties": {...}} shape works too, and
    so does the "simulate" object of `sla-bot lead show --json` (a lead with its history)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"--lead {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"--lead {path}: expected a JSON object of contact properties")
    if isinstance(data.get("simulate"), dict):
        data = data["simulate"]
    portal = data.get("portalId")
    props = data["properties"] if isinstance(data.get("properties"), dict) else data
    portal_id = int(portal) if isinstance(portal, int | str) and str(portal).isdigit() else None
    try:
        touches = [
            Touch(parse_time(t["at"], "touches"), bool(t.get("connect")))
            for t in data.get("touches") or []
        ]
        history = _history(data["history"]) if isinstance(data.get("history"), dict) else None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"--lead {path}: bad touches or history ({exc})") from None
    return LeadFile(dict(props), portal_id, touches, history, data.get("policy"))


def _history(raw: Mapping[str, Any]) -> History:
    values = {
        name: tuple((parse_time(at, f"history of {name}"), value) for at, value in entries)
        for name, entries in (raw.get("values") or {}).items()
    }
    owners = tuple(
        OwnerChange(parse_time(o["at"], "owner change"), o.get("owner_id"), o.get("by", "hubspot"))
        for o in raw.get("owners") or []
    )
    calendar = raw.get("calendar")
    pinned = (str(calendar[0]), calendar[1]) if isinstance(calendar, list | tuple) else None
    return History(values, owners, pinned)


def history_json(history: History) -> dict[str, Any]:
    """The inverse of `_history`: what `lead show --json` exports for `rules simulate`."""
    return {
        "values": {
            name: [[at.isoformat(), value] for at, value in entries]
            for name, entries in history.values.items()
        },
        "owners": [
            {"at": o.at.isoformat(), "owner_id": o.owner_id, "by": o.by} for o in history.owners
        ],
        "calendar": list(history.calendar) if history.calendar else None,
    }


def as_json(tl: Timeline) -> str:
    return json.dumps(tl.to_dict(), indent=2, default=str)


def _utc(t: datetime) -> str:
    return t.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")


def _local(t: datetime, tz: str | None) -> str:
    return t.astimezone(ZoneInfo(tz or "UTC")).strftime("%a %Y-%m-%d %H:%M %Z")


def noise_note(ruleset: RuleSet, tl: Timeline) -> str | None:
    """How messages to managers and channels are batched for this lead (its team's noise
    settings, else its policy's), e.g. "batched with others within 10m, at most 6 an hour"."""
    noise = noise_for(ruleset, tl.policy, tl.team)
    if noise is None or not noise.active:
        return None
    parts = []
    if noise.window_seconds:
        window = noise.batch_window.text if noise.batch_window else ""
        parts.append(f"batched with other leads within {window}")
    if noise.max_per_hour:
        parts.append(f"at most {noise.max_per_hour} an hour, more fold into the next batch")
    return ", ".join(parts)


def _who(r: Recipient, due: datetime, tz: str | None, batching: str | None = None) -> str:
    kind = "post to" if r.role == "channel" else f"DM {r.role}"
    text = f"{kind} {r.name}"
    if batching and r.role in ("manager", "channel") and r.deliver_at is not None:
        text += f" ({batching})"
    if r.deliver_at is None:
        return f"{text} - skipped: {r.note}"
    if r.deliver_at != due:
        return f"{text} at {_local(r.deliver_at, tz)} ({r.note})"
    return text


def _what(step: Step, tz: str | None, batching: str | None = None) -> list[str]:
    lines = [_who(r, step.due_at, tz, batching) for r in step.recipients]
    d = step.detail
    if "candidates" in d:
        names = ", ".join(d["candidates"]) or "nobody available"
        skipped = "; ".join(f"{k}: {v}" for k, v in d["skipped"].items())
        lines.append(
            f"reassign round robin to: {names}" + (f" (skipping {skipped})" if skipped else "")
        )
    if d.get("update_property"):
        pairs = ", ".join(f"{k}={v}" for k, v in d["update_property"].items())
        lines.append(f"set {pairs}")
    if step.kind == RECYCLE:
        lines.append(f"recycle to nurture: {d['reason']} ({d['touches']} touches)")
    if step.kind == CADENCE_END:
        short = f", {d['short_by']} short of the minimum" if d["short_by"] else ""
        lines.append(f"cadence window ends: {d['touches']} of {d['min_touches']} touches{short}")
    if step.kind == BREACH and "late_by_seconds" in d:
        lines.append(f"first touch came {d['late_by_seconds'] // 60} min late")
    if step.kind == PREMATURE_DQ:
        lines.append(
            f"disqualified after {d['touches']} of {d['min_touches']} touches"
            + (f"; revert {', '.join(d['properties'])}" if d["revert"] else "")
        )
    if step.state in ("cancelled", "paused"):
        lines.insert(0, step.why)
    return lines or ["-"]


def as_text(tl: Timeline, lead_id: str | None = None, *, batching: str | None = None) -> str:
    """The table; `batching`: noise_note's words, shown on messages to managers and channels."""
    tz = tl.timezone
    head = [
        f"Lead:     {lead_id or '?'}" + (f" (portal {tl.portal_id})" if tl.portal_id else ""),
        f"Policy:   {tl.policy or '-'}",
        f"Matched:  {tl.match_explanation}",
    ]
    if tl.owner:
        head.append(f"Owner:    {tl.owner.name} (owner id {tl.owner.owner_id or '-'})")
    head.append(f"Team:     {tl.team or '-'}")
    if tl.calendar_name:
        head.append(f"Calendar: {tl.calendar_name} ({tz})")
    if tl.clock_start:
        head.append(f"Clock:    starts {_utc(tl.clock_start)} = {_local(tl.clock_start, tz)}")
    if tl.business_start and tl.business_start != tl.clock_start:
        head.append(f"          business clock from {_local(tl.business_start, tz)}")
    at = f"at {_utc(tl.now)}" if tl.now else "at the end of the timeline"
    head.append(f"Status:   {tl.status} ({at})")
    if tl.touches:
        shown = ", ".join(_local(t.at, tz) + (" connect" if t.connect else "") for t in tl.touches)
        head.append(f"Touches:  {shown}")
    if not tl.steps:
        return "\n".join(head) + "\n"
    rows = [("DUE (UTC)", f"DUE ({tz})", "STEP", "STATE", "WHO / WHAT")]
    for step in tl.steps:
        what = _what(step, tz, batching)
        rows.append((_utc(step.due_at), _local(step.due_at, tz), step.key, step.state, what[0]))
        rows += [("", "", "", "", more) for more in what[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = [
        "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ]
    return "\n".join([*head, "", *table]) + "\n"


def lead_id(props: Mapping[str, Any]) -> str | None:
    value = props.get("hs_object_id")
    return None if value is None else str(value)
