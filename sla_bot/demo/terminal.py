"""The demo's terminal: every Slack message as the fake Slack receives it, in the reader's time.

It watches the fake Slack's workspace (new messages, edits, ephemeral answers, opened modals)
rather than the service's logs, so it shows exactly what was delivered, once.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from integrations.slack.fake import FakeSlack
from sla_bot.demo.blockkit import slack_unescape
from sla_bot.demo.world import World


def local_time(epoch: float, tz: str) -> str:
    """e.g. '10:03:12 EST'."""
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.fromtimestamp(epoch, UTC).astimezone(zone).strftime("%H:%M:%S %Z")


def deadline_of(message: dict[str, Any]) -> str | None:
    """The Deadline field the service put in the message, if any."""
    for block in message.get("blocks") or []:
        for field in block.get("fields") or []:
            text = str(field.get("text") or "")
            if text.startswith("*Deadline*\n"):
                return slack_unescape(text.split("\n", 1)[1])
    return None


def status_of(message: dict[str, Any]) -> str | None:
    """The *Status:* context line of a thread's first message, after an edit."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            text = str(element.get("text") or "")
            if text.startswith("*Status:* "):
                return slack_unescape(text.removeprefix("*Status:* "))
    return None


class Narrator:
    """Polls the fake Slack and prints one line per delivered message, edit or answer."""

    def __init__(
        self,
        slack: FakeSlack,
        world: World,
        started: float,
        out: TextIO | None = None,
        interval: float = 0.2,
    ) -> None:
        self.slack, self.world, self.started = slack, world, started
        self.out = out or sys.stdout
        self.interval = interval
        self.first_message = threading.Event()
        self.first_message_after: float | None = None  # seconds after `started`
        self._seen: dict[tuple[str, str], str | None] = {}  # (channel, ts) -> edit ts
        self._ephemerals = 0
        self._views: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-narrator", daemon=True)

    def start(self) -> Narrator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()  # whatever arrived last

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    # --- who and when ----------

    def where(self, channel: str) -> tuple[str, str]:
        """(label, time zone) of a conversation."""
        for conv in self.slack.conversation_list():
            if conv["id"] != channel:
                continue
            if conv["user"]:
                person = self.world.person(conv["user"])
                user = self.slack.user(conv["user"]) or {}
                name = person.name if person else user.get("name", conv["user"])
                return f"DM {name}", (person.timezone if person else user.get("tz", "UTC"))
            return f"#{conv['name'] or channel}", "UTC"
        return channel, "UTC"

    def _line(self, epoch: float, channel: str, text: str) -> None:
        label, tz = self.where(channel)
        elapsed = time.monotonic() - self.started
        self.out.write(f"+{elapsed:5.1f}s  {local_time(epoch, tz):<13} {label:<24} {text}\n")
        self.out.flush()

    # --- polling ----------

    def poll(self) -> None:
        messages = sorted(self.slack.all_messages(), key=lambda m: float(m["ts"]))
        for message in messages:  # new messages first: an edit follows the reply behind it
            self._new(message)
        for message in messages:
            self._edited(message)
        ephemerals = self.slack.ephemerals
        for answer in ephemerals[self._ephemerals :]:
            person = self.world.person(answer.get("user"))
            who = person.name if person else answer.get("user")
            text = slack_unescape(str(answer.get("text") or ""))
            self._line(float(answer["message_ts"]), answer["channel"], f"(only {who} sees) {text}")
        self._ephemerals = len(ephemerals)
        for view_id, view in self.slack.views.items():
            if view_id not in self._views:
                self._views.add(view_id)
                title = (view.get("title") or {}).get("text", "a form")
                self.out.write(f"{'':49}[modal opened: {title}]\n")
                self.out.flush()

    def _new(self, message: dict[str, Any]) -> None:
        key = (message["channel"], message["ts"])
        if key in self._seen:
            return
        self._seen[key] = None
        text = slack_unescape(str(message.get("text") or ""))
        deadline = deadline_of(message)
        if deadline:
            text += f" (deadline {deadline})"
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            text = "\u21b3 " + text  # a reply in the lead's thread
        self._line(float(message["ts"]), message["channel"], text)
        if self.first_message_after is None:
            self.first_message_after = time.monotonic() - self.started
            self.first_message.set()

    def _edited(self, message: dict[str, Any]) -> None:
        key = (message["channel"], message["ts"])
        edited = (message.get("edited") or {}).get("ts")
        if not edited or self._seen.get(key) == edited:
            return
        self._seen[key] = edited
        status = status_of(message) or slack_unescape(str(message.get("text") or ""))
        self._line(float(edited), message["channel"], f"\u270e now: {status}")
