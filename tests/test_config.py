"""Configuration: defaults, *_FILE secrets, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from sla_bot.config import ConfigError, describe_settings, load_settings


def test_defaults_need_no_environment() -> None:
    s = load_settings({})
    assert s.database_url == "sqlite:///sla-bot.db"
    assert s.hubspot_api_base_url == "https://api.hubapi.com"
    assert s.slack_api_base_url == "https://slack.com/api/"
    assert s.slack_timeout_seconds == 10.0
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.hubspot_rate == (100, 10.0)
    assert s.accepted_signature_versions == {"v1", "v2", "v3"}


def test_capabilities_say_what_will_not_happen() -> None:
    notes = " ".join(load_settings({}).capabilities())
    assert "HUBSPOT_CLIENT_SECRET is not set" in notes
    assert "SLACK_BOT_TOKEN is not set" in notes
    insecure = load_settings({"SLA_BOT_INSECURE_ALLOW_UNSIGNED": "1"}).capabilities()
    assert insecure[0].startswith("INSECURE")


def test_secret_from_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("from-file\n")
    s = load_settings({"HUBSPOT_CLIENT_SECRET_FILE": str(tmp_path / "secret")})
    assert s.hubspot_client_secret is not None
    assert s.hubspot_client_secret.get_secret_value() == "from-file"


def test_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN_FILE: cannot read"):
        load_settings({"SLACK_BOT_TOKEN_FILE": str(tmp_path / "missing")})


def test_secret_and_file_together_are_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("x")
    with pytest.raises(ConfigError, match="both set"):
        load_settings(
            {"SLACK_SIGNING_SECRET": "a", "SLACK_SIGNING_SECRET_FILE": str(tmp_path / "s")}
        )


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("SLA_BOT_PORT", "http", "SLA_BOT_PORT='http': Input should be a valid integer"),
        ("DATABASE_URL", "mysql://x", "expected a sqlite:/// or postgresql+psycopg:// URL"),
        ("HUBSPOT_API_BASE_URL", "api.hubapi.com", "expected an http:// or https:// URL"),
        ("HUBSPOT_RATE_LIMIT", "lots", "expected REQUESTS/WINDOW such as 100/10s"),
        ("SLA_BOT_SIGNATURE_VERSIONS", "v4", "expected a comma-separated subset of v3,v2,v1"),
        ("SLA_BOT_LOG_FORMAT", "xml", "SLA_BOT_LOG_FORMAT='xml': Input should be 'text' or 'json'"),
    ],
)
def test_bad_values_name_variable_and_expectation(var: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({var: value})
    assert expected in str(info.value)
    assert var in str(info.value)


def test_secrets_are_never_shown() -> None:
    s = load_settings(
        {"HUBSPOT_ACCESS_TOKEN": "pat-na1-secret", "DATABASE_URL": "postgresql://u:hunter2@db/x"}
    )
    shown = dict(describe_settings(s))
    assert shown["HUBSPOT_ACCESS_TOKEN"] == "(set, hidden)"
    assert "hunter2" not in shown["DATABASE_URL"]
    assert "pat-na1-secret" not in repr(s)
    assert s.database_url.startswith("postgresql+psycopg://")


def test_empty_values_mean_not_set() -> None:
    s = load_settings({"HUBSPOT_CLIENT_SECRET": "", "SLA_BOT_PUBLIC_URL": " ", "SLA_BOT_PORT": ""})
    assert s.hubspot_client_secret is None
    assert s.public_url is None
    assert s.port == 8080


def test_slack_timeout_is_configurable_and_checked() -> None:
    assert load_settings({"SLACK_TIMEOUT_SECONDS": "2.5"}).slack_timeout_seconds == 2.5
    with pytest.raises(ConfigError, match="SLACK_TIMEOUT_SECONDS"):
        load_settings({"SLACK_TIMEOUT_SECONDS": "0"})
