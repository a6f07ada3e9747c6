"""Who a message goes to: HubSpot owner -> Slack user -> DM conversation.

A `slack:` id in the rules' teams wins. Otherwise the owner's e-mail is looked up with
users.lookupByEmail; answers (including "not in this workspace") are cached in `slack_users`
with an expiry, so thousands of nudges cost one lookup per rep per day, shared by all workers.
DM conversation ids (conversations.open) never change, so they are cached in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import slack_users

NOT_FOUND = ("users_not_found", "user_not_found")


def _upsert(conn: Any, values: dict[str, Any]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(slack_users).values(**values)
    update = {k: stmt.excluded[k] for k in ("user_id", "fetched_at", "expires_at")}
    conn.execute(stmt.on_conflict_do_update(index_elements=["email"], set_=update))


class Directory:
    def __init__(
        self,
        client: WebClient,
        engine: Engine,
        *,
        rules: Any = None,
        ttl: timedelta = timedelta(hours=24),
        miss_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.client, self.engine, self.rules = client, engine, rules
        self.ttl, self.miss_ttl = ttl, miss_ttl
        self._dms: dict[str, str] = {}
        self._lock = threading.Lock()

    def ruleset(self) -> Any:
        """The rules in force (a RulesHolder or a RuleSet), or None."""
        found = self.rules
        try:
            found = found.current() if hasattr(found, "current") else found  # a RulesHolder
        except Exception:  # NoRulesLoaded: no overrides yet
            return None
        return found.ruleset if hasattr(found, "ruleset") else found  # LoadedRules -> RuleSet

    def rules_slack_id(self, owner_id: str | None, email: str | None) -> str | None:
        """The `slack:` of a team member or manager matching this owner id or e-mail."""
        ruleset = self.ruleset()
        if ruleset is None:
            return None
        for team in ruleset.teams.values():
            for person in [*team.members, *team.managers]:
                same_owner = owner_id and person.owner_id == owner_id
                same_email = email and person.email and person.email.lower() == email.lower()
                if (same_owner or same_email) and person.slack:
                    return str(person.slack)
        return None

    def lookup_email(self, email: str, *, now: datetime) -> str | None:
        """Slack user id for an e-mail (cached with expiry); None if not in the workspace."""
        key = email.strip().lower()
        with self.engine.connect() as conn:
            row = conn.execute(select(slack_users).where(slack_users.c.email == key)).first()
        if row is not None and row.expires_at > now:
            return row.user_id
        try:
            user_id = self.client.users_lookupByEmail(email=key)["user"]["id"]
        except SlackApiError as exc:
            if exc.response.get("error") not in NOT_FOUND:
                raise
            user_id = None
        expires = now + (self.ttl if user_id else self.miss_ttl)
        with write_transaction(self.engine, background=True) as conn:
            _upsert(conn, dict(email=key, user_id=user_id, fetched_at=now, expires_at=expires))
        return user_id

    def cached_email(self, email: str, *, now: datetime) -> str | None:
        """The cached answer only (no Slack call): for the 3-second interactivity path."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(slack_users.c.user_id).where(slack_users.c.email == email.strip().lower())
            ).first()
        return row.user_id if row is not None else None

    def user_for(self, person: Mapping[str, Any], *, now: datetime) -> str | None:
        """Rules override, then an explicit U… id, then the e-mail lookup."""
        override = self.rules_slack_id(person.get("owner_id"), person.get("email"))
        if override:
            return override
        slack = person.get("slack")
        if slack and str(slack)[0] in "UW":
            return str(slack)
        if person.get("email"):
            return self.lookup_email(str(person["email"]), now=now)
        return None

    def dm(self, user_id: str) -> str:
        """The bot's DM conversation with a user (D…): posting to a U… id is not the same."""
        with self._lock:
            cached = self._dms.get(user_id)
        if cached:
            return cached
        channel = self.client.conversations_open(users=user_id)["channel"]["id"]
        with self._lock:
            self._dms[user_id] = channel
        return str(channel)
