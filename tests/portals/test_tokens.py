"""Stored OAuth tokens: encrypted at rest, refreshed once across replicas, revocation recorded."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from integrations.hubspot.errors import PortalUnavailable
from integrations.hubspot.fake import FakeHubSpot
from sla_bot.cli import main
from sla_bot.config import ConfigError
from sla_bot.db.schema import hubspot_portals
from sla_bot.portals.apps import secret_box
from sla_bot.portals.registry import PortalClients
from sla_bot.portals.status import check_startup
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.portals.util import KEY, OTHER_KEY, install, oauth_env

PORTAL = 11111111


@pytest.fixture
def env(engine: Engine, fake_hubspot: FakeHubSpot) -> dict[str, str]:
    return {
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        **oauth_env(fake_hubspot),
    }


@pytest.fixture
def installed(engine, clock, fake_hubspot, env) -> Services:
    services = Services(settings=make_settings(**env), engine=engine, clock=clock)
    web = create_app(services=services).test_client()
    assert install(web, fake_hubspot, PORTAL).status_code == 200
    fake_hubspot.portal(PORTAL).add_contact("901", {"email": "a@example.com"})
    return services


def clients(services: Services) -> PortalClients:
    return PortalClients(services.engine, services.settings, services.clock)


def raw_rows(engine: Engine) -> str:
    """Everything the database holds about portals, as text, the way an attacker would dump it."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM hubspot_portals")).all()
    return repr(rows)


def test_stored_tokens_are_unreadable_without_the_key(installed, engine, fake_hubspot) -> None:
    [refresh] = fake_hubspot.oauth.refresh  # the refresh token HubSpot handed out
    [access] = [t for t, g in fake_hubspot.oauth.access.items() if g.portal_id == PORTAL]

    dump = raw_rows(engine)

    assert refresh not in dump and access not in dump
    box = secret_box(installed.settings)
    with engine.connect() as conn:
        row = conn.execute(select(hubspot_portals)).one()
    assert box is not None and box.decrypt(row.refresh_token) == refresh


def test_a_wrong_key_at_start_is_a_clear_error_naming_the_variable(
    installed, engine, env, monkeypatch, capsys
) -> None:
    wrong = make_settings(**{**env, "SLA_BOT_SECRET_KEY": OTHER_KEY})
    with pytest.raises(ConfigError, match=rf"SLA_BOT_SECRET_KEY cannot decrypt .* {PORTAL}"):
        check_startup(engine, wrong, secret_box(wrong))
    missing = make_settings(
        **{k: v for k, v in env.items() if k != "HUBSPOT_CLIENT_ID"} | {"SLA_BOT_SECRET_KEY": ""}
    )
    with pytest.raises(ConfigError, match="SLA_BOT_SECRET_KEY is not set"):
        check_startup(engine, missing, None)
    # The command line refuses to start, naming the variable; the rotated key list works.
    for name, value in {**env, "SLA_BOT_SECRET_KEY": OTHER_KEY}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(["portals", "list"])
    assert exit_.value.code == 2
    assert "SLA_BOT_SECRET_KEY cannot decrypt" in capsys.readouterr().err
    monkeypatch.setenv("SLA_BOT_SECRET_KEY", f"{OTHER_KEY},{KEY}")
    assert main(["portals", "rotate-key"]) == 0
    monkeypatch.setenv("SLA_BOT_SECRET_KEY", OTHER_KEY)
    assert main(["portals", "list"]) == 0
    assert str(PORTAL) in capsys.readouterr().out


def test_a_malformed_key_names_the_variable() -> None:
    with pytest.raises(
        ConfigError, match="SLA_BOT_SECRET_KEY=<hidden>: expected one or more Fernet"
    ):
        make_settings(SLA_BOT_SECRET_KEY="hunter2")


def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(installed, fake_hubspot) -> None:
    registry = clients(installed)
    client = registry.client_for(PORTAL)
    assert client.batch_read_contacts(["901"], ["email"])["901"].get("email") == "a@example.com"
    fake_hubspot.expire_tokens(PORTAL)  # mid-run: HubSpot now answers 401 EXPIRED

    found = client.batch_read_contacts(["901"], ["email"])

    assert found["901"].get("email") == "a@example.com"
    assert fake_hubspot.refreshes(PORTAL) == 1
    statuses = [r.status for r in fake_hubspot.requests if r.path.endswith("/batch/read")]
    assert statuses == [200, 401, 200]
    registry.close()


def test_tokens_are_refreshed_before_they_expire(installed, fake_hubspot, clock) -> None:
    registry = clients(installed)
    client = registry.client_for(PORTAL)
    client.get_contact("901", ["email"])
    clock.advance(timedelta(minutes=26))  # within five minutes of the 30-minute expiry

    client.get_contact("901", ["email"])

    assert fake_hubspot.refreshes(PORTAL) == 1
    assert all(r.status == 200 for r in fake_hubspot.requests if "/crm/" in r.path)
    registry.close()


def test_replicas_refresh_an_expired_token_once(installed, fake_hubspot, engine) -> None:
    """Four "replicas" (own registries, own threads) meet an expired token at once."""
    if engine.dialect.name != "postgresql":
        pytest.skip("several replicas share PostgreSQL; SQLite runs one worker")
    replicas = [clients(installed) for _ in range(4)]
    for registry in replicas:
        registry.client_for(PORTAL).get_contact("901", ["email"])
    fake_hubspot.expire_tokens(PORTAL)
    barrier, errors = threading.Barrier(len(replicas)), []

    def call(registry: PortalClients) -> None:
        barrier.wait()
        try:
            registry.client_for(PORTAL).get_contact("901", ["email"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert errors == []
    assert fake_hubspot.refreshes(PORTAL) == 1
    for registry in replicas:
        registry.close()


def test_an_uninstalled_portal_is_marked_revoked_and_not_retried(
    installed, fake_hubspot, engine, caplog
) -> None:
    registry = clients(installed)
    client = registry.client_for(PORTAL)
    fake_hubspot.uninstall(PORTAL)

    with pytest.raises(Exception, match="HTTP 401"):
        client.get_contact("901", ["email"])

    with engine.connect() as conn:
        row = conn.execute(select(hubspot_portals)).one()
    assert row.status == "revoked" and "reinstall" in row.token_error
    assert "uninstalled" in caplog.text
    registry.reload()
    with pytest.raises(PortalUnavailable, match="install it again"):
        registry.client_for(PORTAL)
    token_calls = [r for r in fake_hubspot.requests if r.path == "/oauth/v1/token"]
    assert len(token_calls) == 2  # the install's exchange, one refused refresh: no retry loop
    registry.close()


def test_reinstalling_a_revoked_portal_reconnects_it(
    installed, fake_hubspot, engine, clock, env
) -> None:
    registry = clients(installed)
    fake_hubspot.uninstall(PORTAL)
    with pytest.raises(Exception, match="HTTP 401"):
        registry.client_for(PORTAL).get_contact("901", ["email"])
    web = create_app(services=installed).test_client()

    assert install(web, fake_hubspot, PORTAL).status_code == 200
    registry.reload()

    assert registry.client_for(PORTAL).get_contact("901", ["email"]) is not None
    registry.close()
