"""The OAuth app and the secret box the configuration describes (cheap: no HubSpot SDK import,
so the web process boots as fast as before)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sla_bot.config import Settings
from sla_bot.secretbox import SecretBox, parse_keys

if TYPE_CHECKING:
    from integrations.hubspot.oauth import HubSpotOAuth


def oauth_app(settings: Settings) -> HubSpotOAuth | None:
    """The configured OAuth app, or None."""
    if not settings.oauth_on:
        return None
    assert settings.hubspot_client_secret is not None
    assert settings.hubspot_oauth_redirect_url is not None
    from integrations.hubspot.oauth import HubSpotOAuth

    return HubSpotOAuth(
        settings.hubspot_client_id or "",
        settings.hubspot_client_secret.get_secret_value(),
        settings.hubspot_oauth_redirect_url,
        base_url=settings.hubspot_api_base_url,
        authorize_url=settings.hubspot_authorize_url,
        timeout=(min(3.05, settings.hubspot_timeout_seconds), settings.hubspot_timeout_seconds),
    )


def secret_box(settings: Settings) -> SecretBox | None:
    if settings.secret_key is None:
        return None
    return SecretBox(parse_keys(settings.secret_key.get_secret_value()))
