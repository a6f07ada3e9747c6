"""search_contacts_modified_since: keyset paging, the result cap, ties and concurrent edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.hubspot.models import epoch_ms

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SEARCH = "/crm/v3/objects/contacts/search"


def _seed(fake, n: int, *, step: timedelta = timedelta(seconds=1), start: int = 5000) -> None:
    for i in range(n):
        fake.add_contact(str(start + i), {"email": f"c{i}@example.com"}, updated_at=T0 + i * step)


def _searches(fake) -> list:
    return [r for r in fake.requests if r.path == SEARCH]


def test_window_bounds_order_and_request_shape(fake_hubspot, hubspot_client):
    _seed(fake_hubspot, 30)

    found = list(
        hubspot_client.search_contacts_modified_since(
            T0 + timedelta(seconds=10), T0 + timedelta(seconds=20), ["email"]
        )
    )

    assert [c.id for c in found] == [str(5000 + i) for i in range(10, 20)]  # GTE since, LT until
    assert found[0].properties["email"] == "c10@example.com"
    (req,) = _searches(fake_hubspot)
    filters = req.json["filterGroups"][0]["filters"]
    assert {(f["propertyName"], f["operator"]) for f in filters} == {
        ("lastmodifieddate", "GTE"),
        ("lastmodifieddate", "LT"),
    }
    assert {f["value"] for f in filters} == {
        str(epoch_ms(T0 + timedelta(seconds=10))),
        str(epoch_ms(T0 + timedelta(seconds=20))),
    }
    assert req.json["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert req.json["limit"] == 200 and "lastmodifieddate" in req.json["properties"]


def test_pages_of_200(fake_hubspot, hubspot_client):
    _seed(fake_hubspot, 450)

    found = list(hubspot_client.search_contacts_modified_since(T0, T0 + timedelta(hours=1), []))

    assert [c.id for c in found] == [str(5000 + i) for i in range(450)]
    assert len(_searches(fake_hubspot)) == 3
    assert all(r.json["limit"] == 200 for r in _searches(fake_hubspot))


def test_more_results_than_the_cap_are_all_returned(fake_hubspot, make_hubspot_client):
    fake_hubspot.search_cap = 50
    client = make_hubspot_client(search_page_size=20)
    _seed(fake_hubspot, 180)

    found = list(client.search_contacts_modified_since(T0, T0 + timedelta(hours=1), ["email"]))

    assert [c.id for c in found] == [str(5000 + i) for i in range(180)]
    searches = _searches(fake_hubspot)
    assert all(r.status == 200 for r in searches)
    assert all("after" not in r.json for r in searches)  # never an offset: cap never reached
    assert len(searches) <= 11  # 180 / 19 new hits per page, plus the last


def test_search_respects_the_search_rate_limit(fake_hubspot, make_hubspot_client, hubspot_clock):
    client = make_hubspot_client(search_page_size=10)
    _seed(fake_hubspot, 85)  # 9 full-ish pages

    found = list(client.search_contacts_modified_since(T0, T0 + timedelta(hours=1), []))

    assert len(found) == 85
    pages = len(_searches(fake_hubspot))
    assert pages == 10  # 9 new hits per page after the first (one boundary hit repeats)
    assert sum(hubspot_clock.sleeps) == pytest.approx(2.0)  # 4 per second: 4 + 4 + 2


def test_a_millisecond_holding_more_hits_than_a_page(fake_hubspot, make_hubspot_client):
    client = make_hubspot_client(search_page_size=20)
    for i in range(70):  # bulk import: 70 contacts share one lastmodifieddate
        fake_hubspot.add_contact(str(7000 + i), {}, updated_at=T0)
    for i in range(5):
        fake_hubspot.add_contact(str(8000 + i), {}, updated_at=T0 + timedelta(seconds=1 + i))

    found = [c.id for c in client.search_contacts_modified_since(T0, T0 + timedelta(hours=1), [])]

    assert sorted(found) == sorted(
        [str(7000 + i) for i in range(70)] + [str(8000 + i) for i in range(5)]
    )
    assert len(found) == len(set(found)) == 75
    walk = [
        r for r in _searches(fake_hubspot) if r.json["sorts"][0]["propertyName"] == "hs_object_id"
    ]
    assert walk and all(
        {"propertyName": "lastmodifieddate", "operator": "EQ", "value": str(epoch_ms(T0))}
        in r.json["filterGroups"][0]["filters"]
        for r in walk
    )


def test_contacts_modified_during_the_walk_are_not_skipped(fake_hubspot, make_hubspot_client):
    client = make_hubspot_client(search_page_size=20)
    _seed(fake_hubspot, 100)
    until = T0 + timedelta(hours=1)

    walk = client.search_contacts_modified_since(T0, until, [])
    seen = [next(walk).id for _ in range(25)]
    fake_hubspot.set_property("5003", "hs_lead_status", "OPEN")  # seen: leaves the window
    fake_hubspot.set_property("5060", "hs_lead_status", "OPEN")  # unseen: leaves the window
    seen += [c.id for c in walk]

    # With offset paging both edits would shift later hits left and one would be skipped.
    expected = [str(5000 + i) for i in range(100) if i != 60]
    assert seen == expected
    later = {
        c.id
        for c in client.search_contacts_modified_since(
            until, datetime.now(UTC) + timedelta(minutes=1), []
        )
    }
    assert later == {"5003", "5060"}  # the next poll picks both up


def test_empty_window(fake_hubspot, hubspot_client):
    _seed(fake_hubspot, 3)

    later = T0 + timedelta(days=1)

    assert (
        list(hubspot_client.search_contacts_modified_since(later, later + timedelta(1), [])) == []
    )
    assert len(_searches(fake_hubspot)) == 1


def test_naive_datetimes_are_refused(hubspot_client):
    with pytest.raises(ValueError):
        list(
            hubspot_client.search_contacts_modified_since(
                datetime(2026, 1, 1), datetime(2026, 1, 2), []
            )
        )
