"""OAuth side of the fake HubSpot: apps, authorization codes, access and refresh tokens.

Shapes follow HubSpot's v1 OAuth API (what ``hubspot-api-client`` 12 calls): ``POST
/oauth/v1/token`` (form: ``grant_type`` authorization_code | refresh_token, ``client_id``,
``client_secret``, ``redirect_uri``, ``code`` / ``refresh_token``) answers ``{access_token,
refresh_token, expires_in, token_type}``; ``GET /oauth/v1/access-tokens/{token}`` answers the
token's ``hub_id``, ``app_id``, ``scopes``... Errors carry HubSpot's ``status``/``message`` and the
RFC 6749 ``error``/``error_description`` pair. Callers hold the fake's lock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

Reply = tuple[int, Any]


@dataclass
class App:
    client_id: str
    client_secret: str
    app_id: int


@dataclass
class Grant:
    """What a token (or code) stands for: one portal, through one app or a private app."""

    portal_id: int
    app: App | None  # None: a private-app token
    scopes: list[str] = field(default_factory=list)
    expires_at: datetime | None = None  # access tokens of OAuth apps expire
    revoked: bool = False


def oauth_error(status: str, message: str, error: str = "invalid_grant") -> Reply:
    body = {"status": status, "message": message, "error": error, "error_description": message}
    return 400, body


class FakeOAuth:
    """Apps registered with the fake, and every credential it has handed out."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.apps: dict[str, App] = {}
        self.codes: dict[str, tuple[Grant, str]] = {}  # code -> (grant, redirect_uri)
        self.access: dict[str, Grant] = {}  # access or private-app token -> grant
        self.refresh: dict[str, Grant] = {}
        self.refreshes: dict[int, int] = {}  # portal -> refresh grants served
        self.access_ttl = timedelta(minutes=30)

    def authorize(self, query: dict[str, str], portal_id: int) -> tuple[int, Any, dict[str, str]]:
        """The browser's visit to the authorize URL: 302 back to the app with a code."""
        app = self.apps.get(query.get("client_id", ""))
        redirect = query.get("redirect_uri", "")
        if app is None or not redirect:
            return 400, "unknown client_id or missing redirect_uri", {}
        code = "code-" + secrets.token_urlsafe(12)
        self.codes[code] = (Grant(portal_id, app, query.get("scope", "").split()), redirect)
        params = {"code": code}
        if "state" in query:
            params["state"] = query["state"]
        sep = "&" if "?" in redirect else "?"
        return 302, "", {"Location": f"{redirect}{sep}{urlencode(params)}"}

    def token(self, form: dict[str, str], now: datetime) -> Reply:
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return oauth_error("BAD_CLIENT_ID", "missing or invalid client_id", "invalid_client")
        if form.get("client_secret") != app.client_secret:
            return oauth_error(
                "BAD_CLIENT_SECRET", "missing or invalid client secret", "invalid_client"
            )
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            found = self.codes.pop(form.get("code", ""), None)
            if found is None or found[0].app is not app:
                return oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
            grant, redirect = found
            if form.get("redirect_uri") != redirect:
                return oauth_error("BAD_REDIRECT_URI", "redirect_uri does not match")
            refresh = "refresh-" + secrets.token_urlsafe(16)
            self.refresh[refresh] = grant
        elif grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            found_grant = self.refresh.get(refresh)
            if found_grant is None or found_grant.revoked or found_grant.app is not app:
                return oauth_error(
                    "BAD_REFRESH_TOKEN", "refresh token is invalid, expired or revoked"
                )
            grant = found_grant
            self.refreshes[grant.portal_id] = self.refreshes.get(grant.portal_id, 0) + 1
        else:
            return oauth_error("BAD_GRANT_TYPE", "unsupported grant_type", "unsupported_grant_type")
        access = "oauth-" + secrets.token_urlsafe(24)
        self.access[access] = Grant(
            grant.portal_id, app, grant.scopes, expires_at=now + self.access_ttl
        )
        ttl = int(self.access_ttl.total_seconds())
        return 200, {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ttl,
            "token_type": "bearer",
        }

    def info(self, token: str, now: datetime) -> Reply:
        grant = self.access.get(token)
        if grant is None or grant.app is None or grant.revoked:
            return 404, {"status": "error", "message": "token not found"}
        assert grant.expires_at is not None
        left = int((grant.expires_at - now).total_seconds())
        if left <= 0:
            return 401, {"status": "error", "message": "token expired"}
        return 200, {
            "token": token,
            "user": "admin@example.com",
            "hub_domain": f"portal-{grant.portal_id}.example.com",
            "scopes": grant.scopes,
            "hub_id": grant.portal_id,
            "app_id": grant.app.app_id,
            "expires_in": left,
            "user_id": 42,
            "token_type": "access",
        }

    def check(self, token: str, now: datetime) -> tuple[Grant | None, str]:
        """(grant, "") for a usable bearer token, else (grant or None, why)."""
        grant = self.access.get(token)
        if grant is None or grant.revoked:
            return None, "unknown"
        if grant.expires_at is not None and grant.expires_at <= now:
            return grant, "expired"
        return grant, ""

    def uninstall(self, portal_id: int) -> None:
        """The portal removed the app: its refresh and access tokens stop working."""
        for table in (self.access, self.refresh):
            for grant in table.values():
                if grant.portal_id == portal_id and grant.app is not None:
                    grant.revoked = True

    def expire(self, portal_id: int, now: datetime) -> None:
        """Every OAuth access token of the portal expires now (as if 30 minutes went by)."""
        for grant in self.access.values():
            if grant.portal_id == portal_id and grant.app is not None:
                grant.expires_at = now
