"""Settings and worker wiring for write-back and reconciliation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import FrozenClock
from sla_bot.config import ConfigError, load_settings
from sla_bot.reconcile import HubSpotJobs, get_watermark, hubspot_jobs
from sla_bot.services import Services
from sla_bot.worker import jobs
from tests.conftest import T0, make_settings
from tests.fixtures_hubspot import HUBSPOT_TEST_TOKEN
from tests.writeback.util import PORTAL, add_row, row

TOKEN = {"HUBSPOT_ACCESS_TOKEN": "pat-na1-x"}


def test_reconcile_defaults_follow_the_token() -> None:
    assert load_settings({}).reconcile_on is False
    with_token = load_settings(TOKEN)
    assert with_token.reconcile_on is True
    assert with_token.reconcile_interval_seconds == 300
    assert with_token.hubspot_portal_id is None
    off = load_settings({**TOKEN, "SLA_BOT_RECONCILE_ENABLED": "false"})
    assert off.reconcile_on is False
    # Switching it on cannot conjure a token.
    assert load_settings({"SLA_BOT_RECONCILE_ENABLED": "true"}).reconcile_on is False


def test_reconcile_settings_are_validated() -> None:
    s = load_settings({"HUBSPOT_PORTAL_ID": "62515", "SLA_BOT_RECONCILE_INTERVAL_SECONDS": "60"})
    assert (s.hubspot_portal_id, s.reconcile_interval_seconds) == (62515, 60)
    with pytest.raises(ConfigError, match="SLA_BOT_RECONCILE_INTERVAL_SECONDS"):
        load_settings({"SLA_BOT_RECONCILE_INTERVAL_SECONDS": "1"})
    with pytest.raises(ConfigError, match="HUBSPOT_PORTAL_ID='abc'"):
        load_settings({"HUBSPOT_PORTAL_ID": "abc"})


def services_for(engine: Engine, clock: FrozenClock, fake: FakeHubSpot, **env: str) -> Services:
    url = engine.url.render_as_string(hide_password=False)
    settings = make_settings(DATABASE_URL=url, HUBSPOT_API_BASE_URL=fake.base_url, **env)
    return Services(settings=settings, engine=engine, clock=clock)


@pytest.fixture
def wired(engine, clock, fake_hubspot) -> Iterator[HubSpotJobs]:
    services = services_for(engine, clock, fake_hubspot, HUBSPOT_ACCESS_TOKEN=HUBSPOT_TEST_TOKEN)
    wiring = HubSpotJobs(services)
    yield wiring
    wiring.close()


def test_without_a_token_there_is_nothing_to_do(engine, clock, fake_hubspot) -> None:
    services = services_for(engine, clock, fake_hubspot)
    assert hubspot_jobs(services) == []
    names = [name for name, _, _ in jobs(services)]
    assert not [n for n in names if "hubspot" in n]
    wiring = HubSpotJobs(services)
    assert wiring.reconcile() == []
    assert wiring.deliver() == (0, 0)
    assert fake_hubspot.requests == []
    assert get_watermark(engine, PORTAL) is None


def test_with_a_token_both_jobs_run_in_the_worker(engine, clock, fake_hubspot) -> None:
    services = services_for(
        engine,
        clock,
        fake_hubspot,
        HUBSPOT_ACCESS_TOKEN=HUBSPOT_TEST_TOKEN,
        SLA_BOT_RECONCILE_INTERVAL_SECONDS="120",
    )
    scheduled = {name: seconds for name, _, seconds in hubspot_jobs(services)}
    assert scheduled["deliver-hubspot-writeback"] == services.settings.worker_interval_seconds
    assert scheduled["reconcile-hubspot"] == 120
    off = services_for(
        engine,
        clock,
        fake_hubspot,
        HUBSPOT_ACCESS_TOKEN=HUBSPOT_TEST_TOKEN,
        SLA_BOT_RECONCILE_ENABLED="0",
    )
    assert [name for name, _, _ in hubspot_jobs(off)] == ["deliver-hubspot-writeback"]


def test_jobs_discover_the_portal_and_do_their_work(wired, engine, clock, fake_hubspot) -> None:
    fake_hubspot.add_contact("901")  # the fake stamps writes with the real time: not in window
    fake_hubspot.add_contact("902", updated_at=T0 - timedelta(minutes=5))
    payload = {"op": "update_contact", "contact_id": "901", "properties": {"hs_lead_status": "X"}}
    add_row(engine, "w1", payload, now=clock.now())

    assert wired.deliver() == (1, 0)
    [res] = wired.reconcile()

    assert row(engine, "w1").status == "sent"
    assert res.portal_id == PORTAL and res.stored == 1
    assert get_watermark(engine, PORTAL) == T0 - timedelta(seconds=30)
    discovery = [r for r in fake_hubspot.requests if r.path == "/account-info/v3/details"]
    assert len(discovery) == 1  # once per worker process


def test_a_configured_portal_id_skips_discovery(engine, clock, fake_hubspot) -> None:
    services = services_for(
        engine,
        clock,
        fake_hubspot,
        HUBSPOT_ACCESS_TOKEN=HUBSPOT_TEST_TOKEN,
        HUBSPOT_PORTAL_ID="4242",
    )
    wiring = HubSpotJobs(services)
    try:
        [res] = wiring.reconcile()
    finally:
        wiring.close()
    assert res.portal_id == 4242
    assert get_watermark(engine, 4242) is not None
    assert all(r.path != "/account-info/v3/details" for r in fake_hubspot.requests)


def test_a_failed_run_is_logged_not_raised(wired, engine, fake_hubspot, caplog) -> None:
    fake_hubspot.fail_next(1, status=400, path_contains="/search")
    assert wired.reconcile() == []
    assert "reconcile portal 62515 failed, the next run repeats the window" in caplog.text
    assert get_watermark(engine, PORTAL) is None
