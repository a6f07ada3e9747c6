"""The console notifier: delivers "slack" outbox rows to the log until Slack is configured."""

from __future__ import annotations

import logging
from typing import Any

from sla_bot.outbox import OutboxItem

log = logging.getLogger("sla_bot.notify")


def render(payload: dict[str, Any]) -> str:
    """One readable line: who is told what about which lead, and by when."""
    r = payload.get("recipient") or {}
    lead = payload.get("lead") or {}
    who = r.get("slack") or r.get("name") or "?"
    deadline = f" (deadline {payload['deadline']})" if payload.get("deadline") else ""
    return (
        f"[{payload.get('kind')}] to {r.get('role')} {who}: {payload.get('text')}{deadline}"
        f" - {lead.get('hubspot_url', '')}"
    )


class LogDeliverer:
    """Deliverer for channel "slack" that prints instead of posting; idempotent by nature."""

    channel = "slack"

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.lines: list[str] = []

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        line = render(item.payload)
        self.lines.append(line)
        log.info("notify %s", line)
        if self.echo:
            print(line, flush=True)
        return {"logged": True}
