"""Block Kit for a batch: one message listing the leads escalated to one manager or channel.

Each lead gets the line and buttons its own message would have had (the builders in messages.py),
so a manager acts on a batched lead exactly as on a single one. Slack allows 50 blocks a
message: the first SHOWN leads get their buttons, the rest are listed by name with their links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.slack.messages import buttons, escape, headline, lead_label, local_time

SHOWN = 20  # 2 blocks a lead + header and footers stay under Slack's 50


@dataclass(frozen=True)
class Member:
    """One lead in a batch: its own message's payload, and whether the hourly cap held it."""

    payload: Mapping[str, Any]
    folded: bool = False


def title(count: int) -> str:
    return "1 lead needs attention" if count == 1 else f"{count} leads need attention"


def plain_batch(members: Sequence[Member]) -> str:
    """The plain text: the log deliverer's output and Slack's notification fallback."""
    lines = [title(len(members))]
    lines += [f"- {headline(m.payload)}" for m in members]
    return "\n".join(lines)


def _line(payload: Mapping[str, Any]) -> str:
    lead = payload.get("lead") or {}
    label = escape(lead_label(lead))
    text = escape(headline(payload))
    if lead.get("hubspot_url"):
        link = f"<{escape(lead['hubspot_url'])}|{label}>"
        text = text.replace(label, link, 1) if label in text else f"{text} ({link})"
    if payload.get("deadline"):
        text += f"\nDeadline: {escape(local_time(payload['deadline'], payload.get('timezone')))}"
    return text


def render_batch(
    members: Sequence[Member], *, now: datetime, max_per_hour: int | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for the batch as it stands: called again on every update."""
    del now  # same signature as messages.render; the list has no relative times
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title(len(members))}*"}}
    ]
    for member in members[:SHOWN]:
        payload = member.payload
        text = _line(payload)
        if member.folded:
            text += "\n_Held back by the hourly cap, sent with this batch_"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        actions = buttons(payload)
        lead = payload.get("lead") or {}
        if actions:
            block_id = f"sla:{lead['id']}:{lead.get('version', 0)}:{payload.get('step_key', '')}"
            blocks.append({"type": "actions", "block_id": block_id[:255], "elements": actions})
    rest = members[SHOWN:]
    if rest:
        names = ", ".join(
            f"<{escape(m.payload['lead']['hubspot_url'])}|{escape(lead_label(m.payload['lead']))}>"
            if (m.payload.get("lead") or {}).get("hubspot_url")
            else escape(lead_label(m.payload.get("lead") or {}))
            for m in rest
        )
        more = f"…and {len(rest)} more: {names}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more[:3000]}})
    folded = sum(m.folded for m in members)
    if folded and max_per_hour:
        note = (
            f":hourglass: {folded} of these were held back: at most {max_per_hour} messages an "
            "hour go to this recipient (noise.max_per_hour)"
        )
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    fallback = (
        title(len(members))
        + ": "
        + ", ".join(lead_label(m.payload.get("lead") or {}) for m in members[:10])
    )
    if len(members) > 10:
        fallback += ", …"
    return escape(fallback)[:3000], blocks
