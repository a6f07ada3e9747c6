"""Block Kit for `/sla`: the caller's open leads, most urgent first, deadlines in their zone.

Each lead has the buttons its DM would have (messages.buttons: "I'm on it", "Log touch",
"Snooze"), so a rep can act from the list. Slack allows 50 blocks a message: SHOWN leads with
buttons, the rest counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from integrations.slack.messages import buttons, escape, local_time
from sla_bot.leadqueue.query import QueueItem

SHOWN = 15
DEADLINES = {
    "first_touch": "First touch",
    "next_touch": "Next touch",
    "cadence_end": "Cadence ends",
}


def item_line(item: QueueItem, tz: str | None, now: datetime) -> str:
    """E.g. "<url|Jane Doe> · breached · First touch was due Fri Nov 20, 10:05 AM CST"."""
    name = f"<{escape(item.hubspot_url)}|{escape(item.name)}>"
    status = escape(item.status.replace("_", " "))
    line = f"*{name}* · {status}"
    if item.deadline is not None:
        what = DEADLINES.get(item.deadline_kind or "", "Deadline")
        verb = "was due" if item.deadline <= now else "due"
        line += f"\n{what} {verb} {escape(local_time(item.deadline.isoformat(), tz))}"
    elif item.next_at is not None:
        line += f"\nNext: {escape(local_time(item.next_at.isoformat(), tz))}"
    return line


def my_leads(
    items: Sequence[QueueItem], *, tz: str | None, now: datetime, who: str
) -> dict[str, Any]:
    """The slash command's ephemeral answer."""
    if not items:
        text = f"No open leads for {who}: nothing is waiting on you."
        return {"response_type": "ephemeral", "text": escape(text)}
    count = "1 open lead" if len(items) == 1 else f"{len(items)} open leads"
    header = f"*{count}* for {escape(who)}, most urgent first (times in {escape(tz or 'UTC')})"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": header}}]
    for item in items[:SHOWN]:
        text = item_line(item, tz, now)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        payload = {
            "kind": item.next_kind or "",
            "lead": {"id": item.lead_id, "version": item.version},
            "recipient": {"role": "owner", "owner_id": item.owner_id},
        }
        actions = buttons(payload)
        if actions:
            block_id = f"sla:{item.lead_id}:{item.version}:queue"
            blocks.append({"type": "actions", "block_id": block_id, "elements": actions})
    if len(items) > SHOWN:
        more = f"…and {len(items) - SHOWN} more (`sla-bot leads list --owner {items[0].owner_id}`)"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return {"response_type": "ephemeral", "text": escape(f"{count} for {who}"), "blocks": blocks}
