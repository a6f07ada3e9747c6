"""Private-app portals from HUBSPOT_PORTALS_FILE: secrets by reference, per-portal webhook
secrets (no body trusted before a signature holds), per-portal clients, daily-limit pauses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from integrations.hubspot.errors import PortalUnavailable
from integrations.hubspot.fake import FakeHubSpot
from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from sla_bot.config import ConfigError
from sla_bot.db.schema import webhook_batches
from sla_bot.portals.config import configured_portals, webhook_secrets
from sla_bot.portals.registry import PortalClients
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.signing import SECRET, batch, event, signed_headers

A, B = 11111111, 22222222


def portals_file(tmp_path: Path, fake: FakeHubSpot | None = None, **extra: Any) -> Path:
    """Portal A: token and secret in files; portal B: both in environment variables."""
    (tmp_path / "a.token").write_text("pat-a\n")
    (tmp_path / "a.secret").write_text("secret-a")
    if fake is not None:
        fake.add_portal(A, token="pat-a")
        fake.add_portal(B, token="pat-b")
    path = tmp_path / "portals.yaml"
    path.write_text(
        f"""portals:
  - portal_id: {A}
    access_token_file: a.token
    client_secret_file: a.secret
    rate_limit: 190/10s
  - portal_id: {B}
    access_token_env: TEST_PORTAL_B_TOKEN
    client_secret_env: TEST_PORTAL_B_SECRET
"""
    )
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PORTAL_B_TOKEN", "pat-b")
    monkeypatch.setenv("TEST_PORTAL_B_SECRET", "secret-b")


def test_the_portals_file_reads_secrets_from_files_and_the_environment(env, tmp_path) -> None:
    settings = make_settings(HUBSPOT_PORTALS_FILE=str(portals_file(tmp_path)))

    a, b = configured_portals(settings)

    assert (a.portal_id, a.token.get_secret_value(), a.rate_limit) == (A, "pat-a", (190, 10.0))
    assert (b.portal_id, b.token.get_secret_value(), b.rate_limit) == (B, "pat-b", None)
    assert "pat-a" not in repr(a) and "secret-a" not in repr(a)
    assert webhook_secrets(settings) == [(SECRET, None), ("secret-a", A), ("secret-b", B)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("portals: [{portal_id: 1, access_token: plain}]", "portals[0].access_token: Extra"),
        ("portals: [{portal_id: 1}]", "access_token_file or access_token_env is required"),
        ("portals: [{portal_id: 1, access_token_env: NOT_SET_ANYWHERE}]", "not set"),
        ("portals: [{portal_id: 1, access_token_file: missing}]", "No such file"),
        ("portals: [{portal_id: 0, access_token_env: X}]", "portal_id: Input should be greater"),
        ("portals: [{portal_id: 1, access_token_env: X, rate_limit: fast}]", "REQUESTS/WINDOW"),
        ("portals: {", "not valid YAML/JSON"),
        (
            "portals: [{portal_id: 1, access_token_env: X}, {portal_id: 1, access_token_env: X}]",
            "portal 1 is configured twice",
        ),
    ],
)
def test_a_bad_portals_file_is_a_clear_error(tmp_path, monkeypatch, text, message) -> None:
    monkeypatch.setenv("X", "pat-x")
    path = tmp_path / "portals.yaml"
    path.write_text(text)
    settings = make_settings(HUBSPOT_PORTALS_FILE=str(path))
    with pytest.raises(ConfigError, match=f"HUBSPOT_PORTALS_FILE|{message}") as err:
        configured_portals(settings)
    assert message in str(err.value)


def test_json_works_too(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("X", "pat-x")
    path = tmp_path / "portals.json"
    path.write_text(json.dumps({"portals": [{"portal_id": 5, "access_token_env": "X"}]}))
    [p] = configured_portals(make_settings(HUBSPOT_PORTALS_FILE=str(path)))
    assert p.portal_id == 5


def private_settings(engine: Engine, fake: FakeHubSpot, tmp_path: Path) -> Any:
    url = engine.url.render_as_string(hide_password=False)
    return make_settings(
        DATABASE_URL=url,
        HUBSPOT_PORTALS_FILE=str(portals_file(tmp_path, fake)),
        HUBSPOT_API_BASE_URL=fake.base_url,
    )


@pytest.fixture
def web(env, engine: Engine, clock: FrozenClock, tmp_path: Path) -> Any:
    url = engine.url.render_as_string(hide_password=False)
    settings = make_settings(DATABASE_URL=url, HUBSPOT_PORTALS_FILE=str(portals_file(tmp_path)))
    return create_app(
        services=Services(settings=settings, engine=engine, clock=clock)
    ).test_client()


def _post(web: Any, portal_id: int, secret: str, now: Any, version: str = "v3", n: int = 1) -> int:
    body = batch([event(n, portalId=portal_id)])
    headers = signed_headers(body, now=now, secret=secret, version=version)
    return web.post("/webhooks/hubspot", data=body, headers=headers).status_code


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(webhook_batches)).scalar_one()


def test_each_portal_is_verified_with_its_own_secret(web, engine, clock) -> None:
    assert _post(web, A, "secret-a", clock.now()) == 200
    assert _post(web, B, "secret-b", clock.now(), version="v1") == 200
    assert _post(web, A, SECRET, clock.now(), n=2) == 200  # the app's secret signs any portal
    assert _stored(engine) == 3


def test_a_signature_no_configured_secret_made_is_refused(web, engine, clock) -> None:
    assert _post(web, A, "secret-nobody-has", clock.now()) == 401
    assert _post(web, A, "secret-nobody-has", clock.now(), version="v1") == 401
    assert _stored(engine) == 0


def test_one_portals_secret_cannot_speak_for_another_portal(web, engine, clock) -> None:
    """The body names portal B, but portal A's secret signed it: refused, nothing stored."""
    assert _post(web, B, "secret-a", clock.now()) == 401
    assert _stored(engine) == 0


def test_each_portal_is_called_with_its_own_token(
    env, engine, clock, fake_hubspot, tmp_path
) -> None:
    settings = private_settings(engine, fake_hubspot, tmp_path)
    fake_hubspot.portal(A).add_contact("1", {"firstname": "Ada"})
    fake_hubspot.portal(B).add_contact("1", {"firstname": "Bea"})
    registry = PortalClients(engine, settings, clock)
    try:
        assert registry.portal_ids() == [A, B]
        names = {
            p: registry.client_for(p).get_contact("1", ["firstname"]).get("firstname")
            for p in (A, B)
        }
        assert names == {A: "Ada", B: "Bea"}
        with pytest.raises(PortalUnavailable, match="no HubSpot token for portal 3"):
            registry.client_for(3)
    finally:
        registry.close()


def test_the_daily_limit_pauses_only_that_portal(
    env, engine, clock, fake_hubspot, tmp_path
) -> None:
    settings = private_settings(engine, fake_hubspot, tmp_path)
    for p in (A, B):
        fake_hubspot.portal(p).add_contact("1", {"firstname": "X"})
    fake_hubspot.portal(A).daily_limit_exhausted = True
    registry = PortalClients(engine, settings, clock)
    try:
        with pytest.raises(Exception, match="HTTP 429"):
            registry.client_for(A).get_contact("1", ["firstname"])
        with pytest.raises(PortalUnavailable, match="daily API limit") as paused:
            registry.client_for(A)
        assert paused.value.retry_after == pytest.approx(3600)
        assert registry.client_for(B).get_contact("1", ["firstname"]) is not None
        other = PortalClients(engine, settings, clock)  # another worker sees the pause too
        assert other.portal_ids() == [B]
        other.close()
        calls_a = [r for r in fake_hubspot.requests if r.portal_id == A]
        assert len(calls_a) == 1  # no retry loop against an exhausted daily limit
    finally:
        registry.close()


def test_portals_list_and_remove(
    env, engine, clock, fake_hubspot, tmp_path, monkeypatch, capsys
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    path = portals_file(tmp_path, fake_hubspot)
    for name, value in {
        "DATABASE_URL": url,
        "HUBSPOT_PORTALS_FILE": str(path),
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "SLA_BOT_RULES_DIR": "rules",
    }.items():
        monkeypatch.setenv(name, value)

    assert main(["portals", "list", "--json"]) == 0
    listed = {p["portal_id"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed[A]["auth"] == "private app (portals file)" and listed[A]["status"] == "active"
    assert listed[A]["last_webhook"] is None and listed[A]["leads_open"] == 0

    assert main(["portals", "remove", str(A)]) == 0
    assert "removed" in capsys.readouterr().out
    assert main(["portals", "list"]) == 0
    table = capsys.readouterr().out
    assert f"{A}  private app (portals file)  removed" in table
    settings = make_settings(
        DATABASE_URL=url, HUBSPOT_PORTALS_FILE=str(path), HUBSPOT_API_BASE_URL=fake_hubspot.base_url
    )
    registry = PortalClients(engine, settings, clock)
    try:
        assert registry.portal_ids() == [B]
        with pytest.raises(PortalUnavailable, match="was removed"):
            registry.client_for(A)
    finally:
        registry.close()
    assert main(["portals", "remove", "999"]) == 1


def test_a_private_app_sending_only_v1_keeps_working(web, engine, clock) -> None:
    for n in range(3):
        assert _post(web, B, "secret-b", clock.now(), version="v1", n=n) == 200
    assert _stored(engine) == 3


def test_a_private_app_seen_with_v3_cannot_be_downgraded(web, engine, clock) -> None:
    assert _post(web, B, "secret-b", clock.now(), version="v1", n=1) == 200
    assert _post(web, B, "secret-b", clock.now(), version="v3", n=2) == 200
    assert _post(web, B, "secret-b", clock.now(), version="v1", n=3) == 401
    assert _post(web, A, "secret-a", clock.now(), version="v1", n=4) == 200  # another signer
    assert _stored(engine) == 3
