"""`slack_threads`: the first message about a lead in each conversation, and where teams post.

Conversation ids learnt from responses are remembered per process, so a message posted to a
`#name` can later be searched (conversations.history needs an id).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import slack_threads

_names: dict[str, str] = {}
_names_lock = threading.Lock()


def known_channel(target: str) -> str | None:
    """The conversation id for a target, if it is one or we have seen it."""
    if target[:1] in ("C", "D", "G"):
        return target
    with _names_lock:
        return _names.get(target)


def learn_channel(target: str, channel_id: str) -> None:
    if target != channel_id:
        with _names_lock:
            _names[target] = channel_id


def find(engine: Engine, lead_id: int | None, target: str) -> Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(
            select(slack_threads).where(
                slack_threads.c.lead_id == lead_id, slack_threads.c.target == target
            )
        ).first()


def for_message(engine: Engine, channel: str, ts: str) -> Row[Any] | None:
    """The thread whose first message is (channel, ts): a button was pressed on it."""
    with engine.connect() as conn:
        return conn.execute(
            select(slack_threads).where(
                slack_threads.c.channel == channel, slack_threads.c.ts == ts
            )
        ).first()


def create(
    engine: Engine,
    lead_id: int,
    target: str,
    channel: str,
    ts: str,
    payload: Mapping[str, Any],
    state: str | None,
    now: datetime,
) -> None:
    """Remember a lead's first message in a conversation (the first writer wins)."""
    from sqlalchemy.dialects import postgresql, sqlite

    with write_transaction(engine, background=True) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(slack_threads).values(
            lead_id=lead_id,
            target=target,
            channel=channel,
            ts=ts,
            root_payload=json.dumps(dict(payload), default=str),
            state=state,
            updated_at=now,
        )
        conn.execute(stmt.on_conflict_do_nothing())


def team_channel(ruleset: Any, payload: Mapping[str, Any]) -> str | None:
    """The channel of the lead's team: `payload.team`, else the team the recipient is in."""
    if ruleset is None:
        return None
    team = ruleset.teams.get(payload.get("team") or "")
    if team is None:
        recipient = payload.get("recipient") or {}
        lead = payload.get("lead") or {}
        found = ruleset.find_member(
            owner_id=recipient.get("owner_id") or lead.get("owner_id"),
            email=recipient.get("email"),
        )
        team = ruleset.teams[found[0]] if found else None
    return str(team.channel) if team is not None and team.channel else None


def by_channel(engine: Engine, lead_id: int | None, channel: str) -> Row[Any] | None:
    """The lead's thread in a conversation, by Slack's conversation id."""
    with engine.connect() as conn:
        return conn.execute(
            select(slack_threads).where(
                slack_threads.c.lead_id == lead_id, slack_threads.c.channel == channel
            )
        ).first()


def forget(engine: Engine, thread_id: int) -> None:
    """The first message was deleted in Slack: the next message starts a new thread."""
    with write_transaction(engine, background=True) as conn:
        conn.execute(delete(slack_threads).where(slack_threads.c.id == thread_id))
