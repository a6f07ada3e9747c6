"""The console notifier: delivers "slack" outbox rows to the log until Slack is configured.

Each message is one log line (so `SLA_BOT_LOG_FORMAT=json` makes it JSON too), in words a rep
would read: who is told what, and the deadline in the recipient's time zone.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla_bot.outbox import OutboxItem

log = logging.getLogger("sla_bot.notify")


def local_deadline(value: Any, tz: str | None) -> str | None:
    """An ISO deadline as 'Fri Nov 20, 10:05 EST' in `tz` (UTC if unknown)."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone)
    return local.strftime(f"%a %b {local.day}, %H:%M %Z")


def render(payload: dict[str, Any]) -> str:
    """One readable line: who is told what about which lead, and by when (their time)."""
    r = payload.get("recipient") or {}
    lead = payload.get("lead") or {}
    if r.get("role") == "channel":
        who = str(r.get("slack") or r.get("name") or "?")
    else:
        who = f"{r.get('name') or r.get('email') or r.get('slack') or '?'} ({r.get('role')})"
    line = f"Slack message to {who}: {payload.get('text')}"
    deadline = local_deadline(payload.get("deadline"), payload.get("timezone"))
    if deadline:
        line += f". Deadline {deadline}"
    if lead.get("hubspot_url"):
        line += f". {lead['hubspot_url']}"
    return line


class LogDeliverer:
    """Deliverer for channel "slack" that logs instead of posting; idempotent by nature.

    `lines` keeps only the latest `keep` lines (for a look in tests and the demo): a worker runs
    for months, and the log already holds every line."""

    channel = "slack"

    def __init__(self, keep: int = 100) -> None:
        self.lines: deque[str] = deque(maxlen=keep)

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        if item.kind in ("scorecard", "marketing"):  # the weekly digests (sla_bot.digests)
            from integrations.slack.digest_messages import plain_text

            line = plain_text(item.payload)
        else:
            line = render(item.payload)
        self.lines.append(line)
        log.info("%s", line)
        return {"logged": True}
