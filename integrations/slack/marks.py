"""Finding a message we may already have posted, after an answer that never arrived.

A post or upload whose answer was lost (a timeout, a 5xx, a dropped connection) may have taken
effect. Before sending again, the sender looks in the conversation (or the thread) for its own
mark: a message whose metadata carries the send's key, or a file with the send's name. One
search for every sender (deliverer, batches, digests), so all of them look back the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from integrations.slack.errors import error_code

SEARCH_BACK = 600.0  # seconds before the recorded attempt to search from (clock skew)

Match = Callable[[Mapping[str, Any]], str | None]


def keyed(key: str) -> Match:
    """Matches our message carrying `key` in its metadata; gives its ts."""

    def match(message: Mapping[str, Any]) -> str | None:
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        return str(message["ts"]) if payload.get("key") == key else None

    return match


def file_named(name: str) -> Match:
    """Matches the message sharing our file called `name`; gives the file's id."""

    def match(message: Mapping[str, Any]) -> str | None:
        for shared in message.get("files") or []:
            if shared.get("name") == name:
                return str(shared["id"])
        return None

    return match


def find_marked(
    client: WebClient,
    *,
    channel: str | None,
    since: float,
    match: Match,
    thread_ts: str | None = None,
) -> str | None:
    """What `match` gives for the first message since `since` (less SEARCH_BACK) in the
    conversation, or in the thread `thread_ts`; None if none matches, or if the conversation's
    id is unknown (a post to `#name` whose answer never came) or the thread is gone."""
    if not channel:
        return None
    args = dict(channel=channel, oldest=f"{since - SEARCH_BACK:.6f}", limit=200)
    if thread_ts:
        try:
            found = client.conversations_replies(ts=thread_ts, include_all_metadata=True, **args)
        except SlackApiError as exc:
            if error_code(exc) == "thread_not_found":
                return None
            raise
    else:
        found = client.conversations_history(include_all_metadata=True, **args)
    for message in found.get("messages") or []:
        result = match(message)
        if result is not None:
            return result
    return None
