"""HubSpot's OAuth endpoints, through ``hubspot-api-client``'s ``oauth`` package.

* :meth:`HubSpotOAuth.authorize_url` - where the installing admin's browser goes
  (``https://app.hubspot.com/oauth/authorize?client_id=&scope=&redirect_uri=&state=``).
* :meth:`exchange` / :meth:`refresh` - ``POST /oauth/v1/token`` (form-encoded) for the code, then
  for each new access token (they live 30 minutes).
* :meth:`token_info` - ``GET /oauth/v1/access-tokens/{token}``: the portal (``hub_id``) and app
  (``app_id``) an access token belongs to.

HubSpot answers a refresh token that was revoked (the app was uninstalled, access removed) with
400 ``BAD_REFRESH_TOKEN`` / ``invalid_grant``: that is :class:`RefreshTokenRevoked`, which the
caller records instead of retrying forever. Every other failure is a classified
:class:`~integrations.hubspot.errors.HubSpotError`. Tokens and the client secret never appear in
errors or logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from integrations.hubspot.errors import HubSpotError, PermanentHubSpotError, classify

REVOKED_STATUSES = frozenset({"BAD_REFRESH_TOKEN", "invalid_grant"})


class RefreshTokenRevoked(PermanentHubSpotError):
    """The portal uninstalled the app or its access was removed: reinstall to reconnect."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds

    def __repr__(self) -> str:
        return f"TokenSet(<hidden>, expires_in={self.expires_in})"


@dataclass(frozen=True)
class TokenInfo:
    portal_id: int
    app_id: int | None
    hub_domain: str | None
    scopes: tuple[str, ...]


class HubSpotOAuth:
    """One OAuth app (client id + secret + registered redirect URI)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        base_url: str = "https://api.hubapi.com",
        authorize_url: str = "https://app.hubspot.com/oauth/authorize",
        timeout: tuple[float, float] = (3.05, 10.0),
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self.base_url = base_url.rstrip("/")
        self._authorize = authorize_url
        self.timeout = timeout
        from hubspot import HubSpot  # the SDK is slow to import; only OAuth callers pay

        self._sdk = HubSpot(host=self.base_url, retry=False)

    def __repr__(self) -> str:
        return f"HubSpotOAuth(client_id={self.client_id!r}, base_url={self.base_url!r})"

    def authorize_url(self, scopes: str, state: str) -> str:
        query = {
            "client_id": self.client_id,
            "scope": " ".join(scopes.split()),
            "redirect_uri": self.redirect_uri,
            "state": state,
        }
        return f"{self._authorize}?{urlencode(query)}"

    def _tokens(self, operation: str, **form: str) -> TokenSet:
        api = self._sdk.oauth.tokens_api
        try:
            resp = api.create(
                client_id=self.client_id,
                client_secret=self._secret,
                _request_timeout=self.timeout,
                **form,
            )
        except Exception as exc:  # noqa: BLE001 - classified
            err = classify(exc, operation=operation)
            if form.get("grant_type") == "refresh_token":
                err = _revoked(err, getattr(exc, "body", None))
            raise err from None
        if not resp.access_token or not resp.refresh_token:
            raise PermanentHubSpotError("token response without tokens", operation=operation)
        return TokenSet(resp.access_token, resp.refresh_token, int(resp.expires_in or 1800))

    def exchange(self, code: str) -> TokenSet:
        """The install's authorization code for the portal's first tokens."""
        return self._tokens(
            "exchange OAuth code",
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        """A new access token; :class:`RefreshTokenRevoked` when HubSpot no longer knows it."""
        return self._tokens(
            "refresh OAuth token", grant_type="refresh_token", refresh_token=refresh_token
        )

    def token_info(self, access_token: str) -> TokenInfo:
        try:
            info = self._sdk.oauth.access_tokens_api.get(
                access_token, _request_timeout=self.timeout
            )
        except Exception as exc:  # noqa: BLE001 - classified
            raise classify(exc, operation="read OAuth token info") from None
        if not isinstance(info.hub_id, int):
            raise PermanentHubSpotError("token info without hub_id", operation="token info")
        return TokenInfo(info.hub_id, info.app_id, info.hub_domain, tuple(info.scopes or ()))


def _revoked(err: HubSpotError, body: Any) -> HubSpotError:
    """A 400 naming a bad refresh token means: revoked; anything else stays as it was."""
    if err.status != 400:
        return err
    if _body_status(body) & REVOKED_STATUSES:
        return RefreshTokenRevoked(
            err.message, status=400, category="BAD_REFRESH_TOKEN", operation=err.operation
        )
    return err


def _body_status(body: Any) -> set[str]:
    """HubSpot's ``status`` and RFC 6749's ``error`` of an OAuth error body."""
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return set()
    if not isinstance(data, dict):
        return set()
    return {str(data.get("status", "")), str(data.get("error", ""))}
