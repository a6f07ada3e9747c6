"""The settings reports and outcomes add: secrets hidden and checked, property lists checked."""

from __future__ import annotations

import pytest

from sla_bot.config import ConfigError, describe_settings, load_settings

KEY = "zs7aiAwJN3jwLSIQ2-tHpZqNPJFHlJq9XxXbG8O7vJE="  # a Fernet key (tests only)
OLD = "lXhQkUdo0j6pIfJQh_d6PYIBpp7k7-z2ofHQ4D2G58Y="


def test_report_secrets_are_checked_and_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"SLA_BOT_SECRET_KEY": "too-short-to-sign"})
    message = str(caught.value)
    assert "SLA_BOT_SECRET_KEY=<hidden>: expected one or more Fernet keys" in message
    assert "too-short" not in message
    settings = load_settings(
        {"SLA_BOT_SECRET_KEY": f"{KEY},{OLD}", "SLA_BOT_REPORTS_TOKEN": "t" * 40}
    )
    shown = dict(describe_settings(settings))
    assert shown["SLA_BOT_SECRET_KEY"] == shown["SLA_BOT_REPORTS_TOKEN"] == "(set, hidden)"
    assert KEY not in repr(settings)


def test_campaign_properties_name_hubspot_properties() -> None:
    default = load_settings({})
    assert default.attribution.campaign_properties == (
        "utm_campaign",
        "recent_conversion_event_name",
    )
    custom = load_settings({"SLA_BOT_CAMPAIGN_PROPERTIES": " utm_campaign , hs_campaign "})
    assert custom.attribution.campaign_properties == ("utm_campaign", "hs_campaign")
    assert "hs_campaign" in custom.attribution.properties
    with pytest.raises(ConfigError, match="SLA_BOT_CAMPAIGN_PROPERTIES='utm campaign'"):
        load_settings({"SLA_BOT_CAMPAIGN_PROPERTIES": "utm campaign"})
