"""Operational notes (unmapped owners, messages that failed for good): the log, and the ops
channel when SLACK_OPS_CHANNEL is set. The same problem is reported at most once an hour, so a
misconfigured rep does not flood the channel with one note per nudge."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from integrations.slack.messages import escape
from sla_bot.clock import Clock

log = logging.getLogger(__name__)


class OpsReporter:
    """Remembers when each problem was last reported: only for `every` (expired keys are
    dropped as new ones come), and at most `max_keys` of them, so months of distinct problems
    cannot grow the worker's memory."""

    def __init__(
        self,
        client: WebClient | None,
        channel: str | None,
        *,
        clock: Clock,
        every: timedelta = timedelta(hours=1),
        max_keys: int = 10_000,
    ) -> None:
        self.client, self.channel, self.clock, self.every = client, channel, clock, every
        self.max_keys = max_keys
        self._seen: OrderedDict[str, datetime] = OrderedDict()  # oldest report first
        self._lock = threading.Lock()
        self.notes: list[str] = []  # what was reported, newest last (bounded)

    def note(self, key: str, text: str, *, now: datetime | None = None) -> bool:
        """Report `text` unless `key` was reported within `every`; True if reported."""
        now = now or self.clock.now()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < self.every:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            self._forget(now)
            self.notes = [*self.notes[-99:], text]
        log.warning("slack ops: %s", text)
        if self.client is not None and self.channel:
            try:
                self.client.chat_postMessage(
                    channel=self.channel, text=escape(f"sla-bot: {text}"), unfurl_links=False
                )
            except (SlackApiError, OSError) as exc:  # ops notes never break delivery
                log.error("cannot post to the ops channel %s: %s", self.channel, exc)
        return True

    def _forget(self, now: datetime) -> None:
        """Drop keys reported longer than `every` ago, then the oldest beyond `max_keys`."""
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at < self.every and len(self._seen) <= self.max_keys:
                return
            del self._seen[key]

    def remembered(self) -> int:
        """How many problems are remembered now."""
        with self._lock:
            return len(self._seen)
