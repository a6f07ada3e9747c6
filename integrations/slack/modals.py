"""Modals behind the buttons: Log touch, Snooze, Reassign; and reading their submissions.

`private_metadata` carries the lead, the button's version and the message the button was on, so
the submission is a compare-and-set against the state the user saw.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from integrations.slack.messages import LOG_TOUCH, REASSIGN, SNOOZE
from sla_bot.engine.touches import TOUCH_KINDS

LABELS = {"call": "Call", "email": "Email", "meeting": "Meeting", "linkedin": "LinkedIn"}
SNOOZE_CHOICES = [
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=24),
]
NEXT_IN_ROTATION = "__round_robin__"
SNOOZE_NOTE = "Snoozing holds the nudges; the SLA clock keeps running."


@dataclass(frozen=True)
class Context:
    """What a modal remembers: the lead, the version on the button, the message it was on."""

    lead_id: int
    version: int
    channel: str | None
    ts: str | None

    def dump(self) -> str:
        return json.dumps({"l": self.lead_id, "v": self.version, "c": self.channel, "t": self.ts})

    @classmethod
    def load(cls, text: str) -> Context:
        data = json.loads(text)
        return cls(int(data["l"]), int(data["v"]), data.get("c"), data.get("t"))


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": value[:150]}


def _input(block_id: str, label: str, element: dict[str, Any], optional: bool = False) -> dict:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": {**element, "action_id": block_id},
    }


def _modal(callback_id: str, title: str, submit: str, ctx: Context, blocks: list) -> dict:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": title[:24]},
        "submit": {"type": "plain_text", "text": submit[:24]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": ctx.dump(),
        "blocks": blocks,
    }


def log_touch_view(ctx: Context, lead_label: str) -> dict[str, Any]:
    kinds = [_option(k, LABELS.get(k, k.capitalize())) for k in TOUCH_KINDS]
    outcomes = [_option("attempt", "Attempt (no answer)"), _option("connect", "Connect")]
    blocks = [
        {"type": "section", "text": {"type": "plain_text", "text": lead_label[:3000]}},
        _input("kind", "What did you do?", {"type": "static_select", "options": kinds}),
        _input(
            "outcome",
            "Outcome",
            {"type": "radio_buttons", "options": outcomes, "initial_option": outcomes[0]},
        ),
        _input(
            "note",
            "Note",
            {"type": "plain_text_input", "multiline": True, "max_length": 2000},
            optional=True,
        ),
    ]
    return _modal(LOG_TOUCH, "Log touch", "Log it", ctx, blocks)


def label_for(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minutes" if minutes < 60 else f"{minutes // 60} hour" + "s" * (minutes > 60)


def snooze_view(ctx: Context, lead_label: str, cap: timedelta) -> dict[str, Any]:
    """Only choices within the cap are offered; the SLA clock keeps running meanwhile."""
    options = [
        _option(str(int(d.total_seconds())), label_for(d)) for d in SNOOZE_CHOICES if d <= cap
    ]
    blocks = [
        {
            "type": "section",
            "text": {
                "type": "plain_text",
                "text": f"{lead_label[:2900]}\n{SNOOZE_NOTE}",
            },
        },
        _input("until", "Snooze for", {"type": "static_select", "options": options}),
    ]
    return _modal(SNOOZE, "Snooze", "Snooze", ctx, blocks)


def reassign_view(ctx: Context, lead_label: str, teammates: list[tuple[str, str]]) -> dict:
    """`teammates`: (owner id, name) of the team, the current owner left out."""
    options = [_option(NEXT_IN_ROTATION, "Next rep in the rotation")]
    options += [_option(owner_id, name) for owner_id, name in teammates[:99]]
    blocks = [
        {"type": "section", "text": {"type": "plain_text", "text": lead_label[:3000]}},
        _input(
            "owner",
            "Give it to",
            {"type": "static_select", "options": options, "initial_option": options[0]},
        ),
    ]
    return _modal(REASSIGN, "Reassign", "Reassign", ctx, blocks)


def value(view: Mapping[str, Any], block_id: str) -> str | None:
    """A submitted value: selected option, radio choice or typed text."""
    state = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    element = state.get(block_id) or {}
    selected = element.get("selected_option")
    if selected:
        return str(selected.get("value"))
    text = element.get("value")
    return None if text is None else str(text)
