"""Which HubSpot client serves which portal, in this process.

Credentials come from three places: `HUBSPOT_ACCESS_TOKEN` (one portal, discovered from the token
unless `HUBSPOT_PORTAL_ID` is set), `HUBSPOT_PORTALS_FILE` (private apps) and OAuth installs (rows
of `hubspot_portals`, tokens refreshed by `OAuthTokens`). A row can also switch a portal off for
every replica: `removed` (`sla-bot portals remove`), `revoked` (HubSpot refused the refresh
token) or paused until a time (HubSpot's daily limit). Rows are re-read every `ttl` seconds.

Each client draws on its portal's budgets, shared by all workers through the database
(:class:`~sla_bot.portals.budget.SharedBudget`): the general one and the search API's own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.errors import HubSpotError, PortalUnavailable
from sla_bot.clock import Clock
from sla_bot.config import Settings
from sla_bot.portals import store
from sla_bot.portals.apps import oauth_app, secret_box
from sla_bot.portals.budget import SharedBudget
from sla_bot.portals.config import PrivatePortal, configured_portals
from sla_bot.portals.tokens import OAuthTokens

log = logging.getLogger(__name__)

DAILY_PAUSE = timedelta(hours=1)  # HubSpot resets at the portal's midnight: probe hourly


class PortalClients:
    """``portal_id -> HubSpotClient`` for this process (callable, as HubSpotWriter wants)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        *,
        ttl: float = 5.0,
        client_options: dict[str, Any] | None = None,
        budget_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine, self.settings, self.clock = engine, settings, clock
        self._ttl = ttl
        self._options = client_options or {}
        self._budget_sleep = budget_sleep
        self._private: list[PrivatePortal] = configured_portals(settings)
        self._by_id: dict[int, PrivatePortal] = {
            p.portal_id: p for p in self._private if p.portal_id is not None
        }
        self._undiscovered = [p for p in self._private if p.portal_id is None]
        self._box = secret_box(settings)
        self._oauth = oauth_app(settings)
        self._rows: dict[int, store.Portal] = {}
        self._loaded_at = float("-inf")
        self._clients: dict[int, HubSpotClient] = {}
        self._lock = threading.RLock()
        self._warned: set[tuple[int, str]] = set()

    def __repr__(self) -> str:
        return f"PortalClients({sorted(self.portal_ids(include_paused=True))})"

    # -- queries ----------------------------------------------------------------------------------

    def __call__(self, portal_id: int) -> HubSpotClient:
        return self.client_for(portal_id)

    def client_for(self, portal_id: int) -> HubSpotClient:
        """The portal's client; PortalUnavailable (a LookupError) says why there is none."""
        with self._lock:
            self._load()
            reason, retry = self._unavailable(portal_id)
            if reason is not None:
                raise PortalUnavailable(portal_id, reason, retry_after=retry)
            client = self._clients.get(portal_id)
            if client is None:
                client = self._clients[portal_id] = self._build(portal_id)
            return client

    def portal_ids(self, *, include_paused: bool = False) -> list[int]:
        """Portals this process can call now (with `include_paused`: also those paused)."""
        with self._lock:
            self._load()
            ids = set(self._by_id) | {p for p, row in self._rows.items() if row.auth == store.OAUTH}
            out = []
            for portal_id in sorted(ids):
                reason, _ = self._unavailable(portal_id)
                if reason is None or (include_paused and reason == "paused"):
                    out.append(portal_id)
            return out

    def reason(self, portal_id: int) -> str | None:
        """Why the portal has no client now (see PortalUnavailable), or None."""
        with self._lock:
            self._load()
            return self._unavailable(portal_id)[0]

    def reload(self) -> None:
        """Re-read the rows now (tests; `sla-bot portals remove` takes effect within `ttl`)."""
        with self._lock:
            self._loaded_at = float("-inf")
            self._load()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- internals --------------------------------------------------------------------------------

    def _unavailable(self, portal_id: int) -> tuple[str | None, float | None]:
        row = self._rows.get(portal_id)
        if row is not None and row.status == store.REMOVED:
            return "removed", None
        if row is not None and row.paused_until is not None:
            left = (row.paused_until - self.clock.now()).total_seconds()
            if left > 0:
                return "paused", left
        if portal_id in self._by_id:
            return None, None
        if self._undiscovered and not self._by_id and row is None:
            return "undiscovered", 60.0
        if row is None or row.auth != store.OAUTH:
            return "not_configured", None
        if row.status == store.REVOKED or not row.has_tokens:
            return "revoked", None
        if self._oauth is None or self._box is None:
            return "oauth_off", None
        return None, None

    def _load(self) -> None:
        if time.monotonic() - self._loaded_at < self._ttl:
            return
        self._discover()
        rows = store.load_all(self.engine)
        for portal_id, row in rows.items():
            old = self._rows.get(portal_id)
            if old is not None and (old.status, old.has_tokens) != (row.status, row.has_tokens):
                self._drop(portal_id)  # removed, revoked or reinstalled: rebuild on next use
        self._rows = rows
        self._loaded_at = time.monotonic()

    def _discover(self) -> None:
        """HUBSPOT_ACCESS_TOKEN without HUBSPOT_PORTAL_ID: ask HubSpot whose token it is."""
        for portal in list(self._undiscovered):
            probe = HubSpotClient(
                portal.token.get_secret_value(),
                base_url=self.settings.hubspot_api_base_url,
                timeout=self._timeout(),
                max_retries=1,
                **{k: v for k, v in self._options.items() if k in ("sleep", "monotonic")},
            )
            try:
                portal_id = probe.get_portal_id()
            except HubSpotError as err:
                log.warning("cannot discover the portal of HUBSPOT_ACCESS_TOKEN yet: %s", err)
                continue
            finally:
                probe.close()
            self._undiscovered.remove(portal)
            if portal_id in self._by_id:
                log.error(
                    "HUBSPOT_ACCESS_TOKEN belongs to portal %s, which %s also configures; "
                    "using the latter",
                    portal_id,
                    self._by_id[portal_id].source,
                )
                continue
            self._by_id[portal_id] = PrivatePortal(
                portal_id, portal.token, portal.client_secret, None, portal.source
            )

    def _drop(self, portal_id: int) -> None:
        client = self._clients.pop(portal_id, None)
        if client is not None:
            client.close()

    def _timeout(self) -> tuple[float, float]:
        timeout = self.settings.hubspot_timeout_seconds
        return (min(3.05, timeout), timeout)

    def _build(self, portal_id: int) -> HubSpotClient:
        private = self._by_id.get(portal_id)
        token: Any
        if private is not None:
            token = private.token.get_secret_value()
            rate = private.rate_limit or self.settings.hubspot_rate
        else:
            assert self._box is not None and self._oauth is not None
            token = OAuthTokens(self.engine, portal_id, self._box, self._oauth, self.clock)
            rate = self.settings.hubspot_rate
        sleep = self._budget_sleep
        options = {
            "base_url": self.settings.hubspot_api_base_url,
            "timeout": self._timeout(),
            "max_retries": 2,  # a blip is retried inline; an outage is each job's backoff
            "max_retry_after": 10.0,  # longer waits too, so claimed rows keep their lease
            **self._options,
        }
        return HubSpotClient(
            token,
            limiter=SharedBudget(self.engine, portal_id, "general", *rate, sleep=sleep),
            search_limiter=SharedBudget(
                self.engine, portal_id, "search", *self.settings.hubspot_search_rate, sleep=sleep
            ),
            on_daily_limit=lambda err: self._daily_limit(portal_id, err),
            **options,
        )

    def _daily_limit(self, portal_id: int, err: HubSpotError) -> None:
        """HubSpot's daily limit for this portal is spent: pause it (only it) until the reset."""
        now = self.clock.now()
        until = now + (timedelta(seconds=err.retry_after) if err.retry_after else DAILY_PAUSE)
        store.pause(self.engine, portal_id, until, now=now)
        log.warning(
            "HubSpot portal %s reached its daily API limit; its calls pause until %s "
            "(other portals go on)",
            portal_id,
            until.isoformat(),
        )
        self.reload()
