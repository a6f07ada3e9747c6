"""OAuth install through the real routes: redirect, callback, and every refusal storing nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import FrozenClock
from sla_bot.db.schema import hubspot_portals
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.portals.util import (
    APP_ID,
    CLIENT_ID,
    REDIRECT,
    approve,
    callback_path,
    install,
    oauth_env,
    query,
    stored,
)
from tests.signing import SECRET


@pytest.fixture
def web(engine: Engine, clock: FrozenClock, fake_hubspot: FakeHubSpot) -> Any:
    url = engine.url.render_as_string(hide_password=False)
    settings = make_settings(DATABASE_URL=url, **oauth_env(fake_hubspot))
    services = Services(settings=settings, engine=engine, clock=clock)
    return create_app(services=services).test_client()


def test_install_redirects_to_hubspot_with_the_app_and_a_state(web, fake_hubspot) -> None:
    response = web.get("/oauth/hubspot/install")

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(fake_hubspot.authorize_url + "?")
    params = query(location)
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == REDIRECT
    assert params["scope"].split() == [
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.objects.owners.read",
    ]
    assert len(params["state"]) > 40 and CLIENT_ID not in params["state"]  # sealed, not plain
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_a_callback_stores_the_portal_and_names_it(web, engine, fake_hubspot) -> None:
    response = install(web, fake_hubspot, 11111111)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "portal-11111111.example.com (11111111)" in page and "connected" in page
    with engine.connect() as conn:
        row = conn.execute(select(hubspot_portals)).one()
    assert (row.portal_id, row.auth, row.status, row.app_id) == (
        11111111,
        "oauth",
        "active",
        APP_ID,
    )
    assert "crm.objects.owners.read" in row.scopes
    assert stored(engine) == (1, 1)


def test_the_confirmation_page_escapes_what_hubspot_says(web, engine, fake_hubspot) -> None:
    fake_hubspot.add_portal(5)
    start = web.get("/oauth/hubspot/install")
    callback = approve(fake_hubspot, start.headers["Location"])
    response = web.get(callback_path(callback).replace("code=", "error=<b>x</b>&code=", 1))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert stored(engine) == (0, 0)


def test_a_forged_state_is_refused_and_nothing_stored(web, engine, fake_hubspot) -> None:
    fake_hubspot.add_portal(5)
    fake_hubspot.login_portal = 5
    start = web.get("/oauth/hubspot/install")
    callback = approve(fake_hubspot, start.headers["Location"])
    forged = callback_path(callback).replace("state=", "state=x", 1)

    response = web.get(forged)

    assert response.status_code == 400
    assert "Invalid or expired install link" in response.get_data(as_text=True)
    assert stored(engine) == (0, 0)


def test_an_expired_state_is_refused(web, engine, fake_hubspot, clock) -> None:
    fake_hubspot.add_portal(5)
    fake_hubspot.login_portal = 5
    start = web.get("/oauth/hubspot/install")
    callback = approve(fake_hubspot, start.headers["Location"])
    clock.advance(timedelta(minutes=11))

    assert web.get(callback_path(callback)).status_code == 400
    assert stored(engine) == (0, 0)


def test_a_replayed_callback_is_refused_and_changes_nothing(web, engine, fake_hubspot) -> None:
    fake_hubspot.add_portal(5)
    fake_hubspot.login_portal = 5
    start = web.get("/oauth/hubspot/install")
    callback = callback_path(approve(fake_hubspot, start.headers["Location"]))
    assert web.get(callback).status_code == 200
    before = stored(engine)

    again = web.get(callback)

    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert stored(engine) == before == (1, 1)


def test_a_callback_from_another_browser_is_refused(web, engine, fake_hubspot) -> None:
    fake_hubspot.add_portal(5)
    fake_hubspot.login_portal = 5
    start = web.get("/oauth/hubspot/install")
    callback = callback_path(approve(fake_hubspot, start.headers["Location"]))
    web.delete_cookie("sla_bot_oauth_nonce", path="/oauth/hubspot")

    response = web.get(callback)

    assert response.status_code == 400 and "started elsewhere" in response.get_data(as_text=True)
    assert stored(engine) == (0, 0)


def test_a_code_issued_to_another_app_is_refused(web, engine, fake_hubspot) -> None:
    fake_hubspot.register_app("someone-elses-app", "their-secret", 999)
    fake_hubspot.add_portal(5)
    fake_hubspot.login_portal = 5
    ours = web.get("/oauth/hubspot/install").headers["Location"]
    theirs = ours.replace(f"client_id={CLIENT_ID}", "client_id=someone-elses-app")
    callback = callback_path(approve(fake_hubspot, theirs))

    response = web.get(callback)

    assert response.status_code == 400
    assert "HubSpot refused the install" in response.get_data(as_text=True)
    assert stored(engine) == (0, 0)


def test_a_token_of_another_app_id_is_refused(engine, clock, fake_hubspot) -> None:
    url = engine.url.render_as_string(hide_password=False)
    env = oauth_env(fake_hubspot, HUBSPOT_APP_ID="12345")  # the fake says 777
    services = Services(settings=make_settings(DATABASE_URL=url, **env), engine=engine, clock=clock)
    web = create_app(services=services).test_client()

    response = install(web, fake_hubspot, 5)

    assert response.status_code == 403 and "Unknown app" in response.get_data(as_text=True)
    assert stored(engine) == (0, 0)


def test_portals_outside_the_allow_list_are_refused(engine, clock, fake_hubspot) -> None:
    url = engine.url.render_as_string(hide_password=False)
    env = oauth_env(fake_hubspot, HUBSPOT_ALLOWED_PORTALS="11111111")
    services = Services(settings=make_settings(DATABASE_URL=url, **env), engine=engine, clock=clock)
    web = create_app(services=services).test_client()

    assert install(web, fake_hubspot, 5).status_code == 403
    assert stored(engine) == (0, 0)
    assert install(web, fake_hubspot, 11111111).status_code == 200


def test_without_oauth_settings_the_routes_say_so(client, engine) -> None:
    response = client.get("/oauth/hubspot/install")
    assert response.status_code == 404
    assert "HUBSPOT_CLIENT_ID" in response.get_data(as_text=True)
    assert client.get("/oauth/hubspot/callback?code=x&state=y").status_code == 404
    assert stored(engine) == (0, 0)


def test_the_client_secret_never_reaches_the_browser(web, fake_hubspot) -> None:
    start = web.get("/oauth/hubspot/install")
    assert SECRET not in start.headers["Location"]
