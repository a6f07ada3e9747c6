"""The access token of one OAuth portal, refreshed before it expires, once across replicas.

Access tokens live 30 minutes. The stored one is used until `MARGIN` before its expiry; then
one process refreshes it while the others wait for the row: on PostgreSQL the refresh runs
under ``SELECT … FOR UPDATE`` of the portal's row, and whoever gets the row next finds the new
token there and uses it. On SQLite (one worker process) a process lock serialises refreshes and
the row is written in a short transaction, so a webhook never waits behind a network call.

A refused refresh token (the portal uninstalled the app) marks the portal `revoked` with the
reason, logs it once and stops: nothing retries it until someone installs the app again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.engine import Engine

from integrations.hubspot.errors import PermanentHubSpotError
from integrations.hubspot.oauth import HubSpotOAuth, RefreshTokenRevoked
from sla_bot.clock import Clock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import hubspot_portals
from sla_bot.portals.store import ACTIVE, REVOKED
from sla_bot.secretbox import SecretBox

log = logging.getLogger(__name__)

MARGIN = timedelta(minutes=5)
_process_locks: dict[tuple[str, int], threading.Lock] = {}
_guard = threading.Lock()


class PortalRevoked(PermanentHubSpotError):
    """The portal's OAuth tokens were revoked: reinstall the app to reconnect it."""


@dataclass
class _Cached:
    token: str
    expires_at: datetime


class OAuthTokens:
    """A :class:`~integrations.hubspot.retry.TokenSource` backed by the portal's row."""

    def __init__(
        self, engine: Engine, portal_id: int, box: SecretBox, oauth: HubSpotOAuth, clock: Clock
    ) -> None:
        self.engine, self.portal_id = engine, portal_id
        self._box, self._oauth, self._clock = box, oauth, clock
        self._cached: _Cached | None = None
        self._lock = threading.Lock()
        self.refreshed = 0  # refreshes this process performed (tests, metrics)

    def __repr__(self) -> str:
        return f"OAuthTokens(portal={self.portal_id})"

    def current(self) -> str:
        with self._lock:
            cached = self._cached
        if cached is not None and cached.expires_at - MARGIN > self._clock.now():
            return cached.token
        return self._refresh(stale=None)

    def renew(self, stale: str) -> bool:
        try:
            self._refresh(stale=stale)
        except PortalRevoked:
            return False
        return True

    # -- the refresh, once across replicas ------------------------------------------------------

    def _refresh(self, stale: str | None) -> str:
        revoked: str | None = None
        with self._row() as (conn, row):
            if row is None or row.status != ACTIVE or row.refresh_token is None:
                why = row.token_error if row is not None and row.token_error else "not installed"
                raise PortalRevoked(
                    f"portal {self.portal_id}: {why}", status=401, operation="OAuth token"
                )
            now = self._clock.now()
            token = self._box.decrypt(row.access_token) if row.access_token else None
            expires = row.access_expires_at
            if token and token != stale and expires is not None and expires - MARGIN > now:
                self._remember(token, expires)  # someone else refreshed it meanwhile
                return token
            try:
                fresh = self._oauth.refresh(self._box.decrypt(row.refresh_token))
            except RefreshTokenRevoked as err:
                # Recorded in this transaction (it commits); raised once the row is released.
                revoked = f"refresh token refused by HubSpot ({err.message}); reinstall the app"
                self._write(conn, status=REVOKED, token_error=revoked, access_token=None, now=now)
            else:
                expires = now + timedelta(seconds=fresh.expires_in)
                self._write(
                    conn,
                    access_token=self._box.encrypt(fresh.access_token),
                    refresh_token=self._box.encrypt(fresh.refresh_token),
                    access_expires_at=expires,
                    token_error=None,
                    now=now,
                )
                self.refreshed += 1
                self._remember(fresh.access_token, expires)
        if revoked is not None:
            log.error(
                "HubSpot portal %s: OAuth access revoked or app uninstalled; its calls stop "
                "until the app is installed again",
                self.portal_id,
            )
            raise PortalRevoked(revoked, status=401, operation="refresh OAuth token")
        log.info("HubSpot portal %s: access token refreshed", self.portal_id)
        return fresh.access_token

    def _remember(self, token: str, expires: datetime) -> None:
        with self._lock:
            self._cached = _Cached(token, expires)

    def _write(self, conn: Connection | None, *, now: datetime, **values: Any) -> None:
        stmt = (
            update(hubspot_portals)
            .where(hubspot_portals.c.portal_id == self.portal_id)
            .values(updated_at=now, **values)
        )
        if conn is not None:
            conn.execute(stmt)
            return
        with write_transaction(self.engine, background=True) as own:
            own.execute(stmt)

    @contextmanager
    def _row(self) -> Iterator[tuple[Connection | None, Any]]:
        """The portal's row, locked for the refresh (see the module doc for SQLite)."""
        query = select(hubspot_portals).where(hubspot_portals.c.portal_id == self.portal_id)
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                yield conn, conn.execute(query.with_for_update()).first()
            return
        key = (str(self.engine.url), self.portal_id)
        with _guard:
            lock = _process_locks.setdefault(key, threading.Lock())
        with lock:
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
            yield None, row
