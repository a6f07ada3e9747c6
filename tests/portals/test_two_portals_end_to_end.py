"""Two portals installed through the real OAuth routes, served by one deployment end to end:
one webhook URL, their own rules, their own tokens for fetch and write-back, a refresh mid-run."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import FrozenClock, to_epoch_ms
from sla_bot.engine import leads as repo
from sla_bot.engine.apply import apply_pending
from sla_bot.engine.sweep import sweep_due
from sla_bot.fetching import Fetcher
from sla_bot.portals.registry import PortalClients
from sla_bot.reconcile import HubSpotJobs
from sla_bot.rules.holder import RulesHolder
from sla_bot.services import Services
from sla_bot.splitter import split_pending
from sla_bot.web.app import create_app
from tests.conftest import T0, make_settings
from tests.portals.util import install, oauth_env
from tests.signing import signed_headers

RULES = Path(__file__).resolve().parent / "rules"
US, UK = 11111111, 22222222
CONTACT = 101  # the same contact id in both portals: everything is keyed by (portal, object)


def creation(portal_id: int, n: int) -> dict:
    return {
        "eventId": n,
        "subscriptionId": 7,
        "portalId": portal_id,
        "appId": 777,
        "occurredAt": to_epoch_ms(T0),
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": CONTACT,
        "changeSource": "CRM",
    }


def test_two_portals_from_install_to_write_back(
    engine: Engine, clock: FrozenClock, fake_hubspot: FakeHubSpot
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    settings = make_settings(
        DATABASE_URL=url, SLA_BOT_RULES_DIR=str(RULES), **oauth_env(fake_hubspot)
    )
    services = Services(settings=settings, engine=engine, clock=clock)
    services.rules = RulesHolder(RULES)
    services.rules.reload_if_changed()
    web = create_app(services=services).test_client()
    for portal_id in (US, UK):
        assert install(web, fake_hubspot, portal_id).status_code == 200
    for portal_id, event, owner in ((US, "Webinar: pipelines", "2001"), (UK, "UK webinar", "3001")):
        crm = fake_hubspot.portal(portal_id)
        crm.add_owner(owner, f"rep{owner}@example.com", "Rep", owner)
        crm.add_contact(
            str(CONTACT),
            {
                "createdate": T0.isoformat(),
                "hubspot_owner_id": owner,
                "recent_conversion_event_name": event,
                "hs_lead_status": "NEW",
            },
        )

    # Both portals' events arrive on the one webhook URL, signed with the app's secret.
    for portal_id, n in ((US, 1), (UK, 2)):
        body = json.dumps([creation(portal_id, n)]).encode()
        response = web.post("/webhooks/hubspot", data=body, headers=signed_headers(body, now=T0))
        assert response.status_code == 200

    registry = PortalClients(engine, settings, clock)
    jobs = HubSpotJobs(services, client=registry)
    loaded = services.rules.current()
    split_pending(engine, now=T0)
    apply_pending(engine, loaded, now=T0, fetching=True)
    assert Fetcher(registry).run(engine, loaded, now=T0) == 2
    sweep_due(engine, loaded, now=T0)
    clock.set(T0 + timedelta(minutes=20))  # both targets missed: their escalations write back
    sweep_due(engine, loaded, now=clock.now())
    fake_hubspot.expire_tokens(US)  # the US token expires mid-run

    sent, failed = jobs.deliver()
    assert (sent, failed) == (4, 0)  # per lead: the Lead Status update and a note

    with engine.connect() as conn:
        us, uk = (repo.find(conn, p, CONTACT) for p in (US, UK))
    assert us is not None and us.policy == "us_webinar" and us.owner_id == "2001"
    assert uk is not None and uk.policy == "uk_webinar" and uk.owner_id == "3001"
    assert us.state.owner_names == {"2001": "Rep 2001"}
    # Each portal's contact was read and written with its own token (the fake answers a token
    # from its own portal's CRM only).
    assert fake_hubspot.portal(US).contacts[str(CONTACT)]["hs_lead_status"] == "OPEN"
    assert fake_hubspot.portal(UK).contacts[str(CONTACT)]["hs_lead_status"] == "IN_PROGRESS"
    crm_calls = [
        (r.method, r.path, r.portal_id, r.status)
        for r in fake_hubspot.requests
        if r.path.startswith("/crm/")
    ]
    reads = sorted((p, s) for m, path, p, s in crm_calls if path.endswith("/batch/read"))
    assert reads == [(US, 200), (UK, 200)]
    writes = [(m, p, s) for m, path, p, s in crm_calls if m != "GET" and "batch" not in path]
    # The expired token: refreshed once, then the same call again. Write-back runs on several
    # threads, so the US note may have met the expired token too (then it waited for the same
    # refresh).
    expired = [w for w in writes if w[2] == 401]
    assert ("PATCH", US, 401) in expired or ("POST", US, 401) in expired
    assert {p for _, p, _ in expired} == {US}
    assert sorted(w for w in writes if w[2] != 401) == [
        ("PATCH", US, 200),
        ("PATCH", UK, 200),
        ("POST", US, 201),
        ("POST", UK, 201),
    ]
    assert fake_hubspot.refreshes(US) == 1 and fake_hubspot.refreshes(UK) == 0
    jobs.close()
    registry.close()
