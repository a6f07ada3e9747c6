"""Block Kit messages for outbox payloads, with a plain-text twin.

Everything that comes from the CRM (names, companies, notes, reasons) goes through `escape`, so a
lead named `<!channel>` cannot ping anyone. `plain_text` is the unescaped summary the log
deliverer prints; Slack gets `escape(plain_text(...))` as the notification fallback, because the
top-level `text` is parsed for mentions too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sla_bot.engine.notifications import local_time as zoned
from sla_bot.engine.notifications import next_touch

Payload = Mapping[str, Any]
ACK, LOG_TOUCH, SNOOZE, REASSIGN = "sla_ack", "sla_log_touch", "sla_snooze", "sla_reassign"
TERMINAL_KINDS = frozenset({"recycle", "disqualification.premature"})


def escape(text: object) -> str:
    """Slack's three control characters as entities (`&` first); nothing else is touched."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def parse_time(value: object) -> datetime | None:
    if not value:
        return None
    at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def local_time(value: object, tz: str | None) -> str:
    """A deadline in the recipient's zone, e.g. "Fri Nov 20, 10:05 AM EST"."""
    at = parse_time(value)
    return "no deadline" if at is None else zoned(at, tz)


def ago(value: object, now: datetime) -> str:
    at = parse_time(value)
    if at is None:
        return "unknown"
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} d ago"


def lead_label(lead: Payload) -> str:
    name = lead.get("name") or lead.get("email") or f"contact {lead.get('object_id')}"
    return f"{name} ({lead['company']})" if lead.get("company") else str(name)


def headline(payload: Payload) -> str:
    """One plain line per kind: what happened and what is expected."""
    kind, lead = payload.get("kind", ""), payload.get("lead") or {}
    label, touches = lead_label(lead), payload.get("touches") or {}
    recipient = payload.get("recipient") or {}
    if kind == "lead.assigned":
        return f"New lead {label} needs a first touch"
    if kind == "first_touch.warning":
        return f"First touch for {label} is due soon"
    if kind == "first_touch.breach":
        return f"SLA breached: no first touch for {label} (owner: {lead.get('owner_name') or '?'})"
    if kind == "ladder":
        return f"Escalation ({payload.get('step_key', 'ladder')}): still no first touch for {label}"
    if kind == "cadence.due":
        return (
            f"{next_touch(int(touches.get('count') or 0) + 1, touches.get('min'))} due for {label}"
        )
    if kind == "reassigned":
        old = (payload.get("old_owner") or {}).get("name") or "?"
        new = payload.get("new_owner") or {}
        if recipient.get("owner_id") and recipient.get("owner_id") == new.get("owner_id"):
            return f"{label} is now yours (reassigned from {old})"
        return f"{label} was reassigned from {old} to {new.get('name') or '?'}"
    if kind == "recycle":
        return f"Recycled to nurture: {label}"
    if kind == "disqualification.premature":
        count, goal = touches.get("count", "?"), touches.get("min", "?")
        return f"{label} was disqualified after only {count} of {goal} touches"
    return payload.get("text") or f"Update on {label}"


def facts(payload: Payload, now: datetime) -> list[tuple[str, str]]:
    """(label, plain value) pairs shown under the headline."""
    lead, out = payload.get("lead") or {}, []
    for key, title in (("source", "Source"), ("action", "What they did"), ("email", "Email")):
        if lead.get(key):
            out.append((title, str(lead[key])))
    if lead.get("created_at"):
        out.append(("Arrived", ago(lead["created_at"], now)))
    if payload.get("deadline"):
        out.append(("Deadline", local_time(payload["deadline"], payload.get("timezone"))))
    if payload.get("reason"):
        out.append(("Reason", str(payload["reason"])))
    return out


def history_lines(payload: Payload) -> list[str]:
    history = (payload.get("touches") or {}).get("history") or []
    lines = []
    for touch in history[:20]:
        when = local_time(touch.get("at"), payload.get("timezone"))
        outcome = "connect" if touch.get("connect") else "attempt"
        lines.append(f"{when}: {touch.get('kind') or 'touch'} ({outcome})")
    return lines


def plain_text(payload: Payload, *, now: datetime, state: str | None = None) -> str:
    """The message as plain text: the log deliverer's output and Slack's fallback."""
    lines = [headline(payload)] + [f"{k}: {v}" for k, v in facts(payload, now)]
    if payload.get("detail"):
        lines.append(str(payload["detail"]))
    history = history_lines(payload)
    if history:
        lines += ["Touches:"] + [f"- {line}" for line in history]
    url = (payload.get("lead") or {}).get("hubspot_url")
    if url:
        lines.append(f"HubSpot: {url}")
    if state:
        lines.insert(0, f"[{state}]")
    return "\n".join(lines)


def buttons(payload: Payload) -> list[dict[str, Any]]:
    """Which buttons a recipient gets: reps act on their lead, managers also reassign."""
    kind, lead = payload.get("kind", ""), payload.get("lead") or {}
    recipient = payload.get("recipient") or {}
    if kind in TERMINAL_KINDS or not lead.get("id"):
        return []
    if kind == "reassigned" and recipient.get("owner_id") != (payload.get("new_owner") or {}).get(
        "owner_id"
    ):
        return []
    value = f"{lead['id']}:{lead.get('version', 0)}"
    wanted = [
        (ACK, "I'm on it", "primary"),
        (LOG_TOUCH, "Log touch", None),
        (SNOOZE, "Snooze", None),
    ]
    if recipient.get("role") in ("manager", "channel"):
        wanted = [(LOG_TOUCH, "Log touch", None), (REASSIGN, "Reassign", "danger")]
    out = []
    for action_id, text, style in wanted:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "value": value,
            "text": {"type": "plain_text", "text": text},
        }
        if style:
            button["style"] = style
        out.append(button)
    return out


def render(
    payload: Payload, *, now: datetime, state: str | None = None, note: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks). `state`: current state shown on a thread's first message;
    `note`: an operational note, e.g. why this went to the team channel instead of a DM."""
    lead = payload.get("lead") or {}
    title = escape(headline(payload))
    if lead.get("hubspot_url"):
        label = escape(lead_label(lead))
        link = f"<{escape(lead['hubspot_url'])}|{label}>"
        title = title.replace(label, link, 1) if label in title else f"{title}\n{link}"
    blocks: list[dict[str, Any]] = []
    if state:
        blocks.append(_context(f"*Status:* {escape(state)}"))
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": title[:3000]}})
    fields = [
        {"type": "mrkdwn", "text": f"*{k}*\n{escape(v)}"[:2000]} for k, v in facts(payload, now)
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})
    if payload.get("detail"):
        blocks.append(_context(escape(payload["detail"])[:3000]))
    history = history_lines(payload)
    if history:
        text = "*Touches*\n" + "\n".join(f"• {escape(line)}" for line in history)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    if note:
        blocks.append(_context(f":information_source: {escape(note)}"))
    actions = buttons(payload)
    if actions and not (state or "").startswith(("Handled", "Closed", "Reassigned")):
        block_id = f"sla:{lead['id']}:{lead.get('version', 0)}:{payload.get('step_key', '')}"
        blocks.append({"type": "actions", "block_id": block_id[:255], "elements": actions})
    fallback = plain_text(payload, now=now, state=state).split("\n", 1)[0]
    return escape(fallback), blocks


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


def parse_value(value: str) -> tuple[int, int]:
    """A button value back into (lead id, version); ValueError if it is not ours."""
    lead_id, version = value.split(":", 1)
    return int(lead_id), int(version)


def state_after(kind: str, payload: Payload) -> str | None:
    """What a thread's first message should say after this message went out."""
    if kind in ("first_touch.breach", "ladder"):
        return "Breached: no first touch yet"
    if kind == "reassigned":
        return f"Reassigned to {(payload.get('new_owner') or {}).get('name') or 'a teammate'}"
    if kind == "recycle":
        return "Closed: recycled to nurture"
    if kind == "disqualification.premature":
        return "Disqualified early"
    return None


def seconds_until(value: object, now: datetime) -> timedelta | None:
    at = parse_time(value)
    return None if at is None else at - now
