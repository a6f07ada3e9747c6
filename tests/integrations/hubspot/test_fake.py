"""The fake HubSpot itself: auth, headers, fault injection, search semantics, SDK compatibility."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException

from integrations.hubspot.fake import FakeHubSpot
from tests.fixtures_hubspot import HUBSPOT_TEST_TOKEN

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
def http():
    pool = urllib3.PoolManager(retries=False)
    yield pool
    pool.clear()


@pytest.fixture
def sdk(fake_hubspot):
    return HubSpot(access_token=HUBSPOT_TEST_TOKEN, host=fake_hubspot.base_url, retry=False)


def _get(http, fake, path, token=HUBSPOT_TEST_TOKEN, method="GET", body=None):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    data = json.dumps(body) if body is not None else None
    return http.request(method, fake.base_url + path, headers=headers, body=data)


def test_missing_or_wrong_token_is_a_hubspot_401(fake_hubspot, http):
    resp = _get(http, fake_hubspot, "/crm/v3/owners/", token="nope")

    assert resp.status == 401
    body = resp.json()
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["correlationId"] and "Authentication credentials not found" in body["message"]


def test_rate_limit_headers_on_normal_calls_but_not_on_search(fake_hubspot, http):
    normal = _get(http, fake_hubspot, "/crm/v3/owners/")
    search = _get(http, fake_hubspot, "/crm/v3/objects/contacts/search", method="POST", body={})

    assert normal.headers["X-HubSpot-RateLimit-Max"] == "100"
    assert normal.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(normal.headers["X-HubSpot-RateLimit-Remaining"]) == 99
    assert search.status == 200 and "X-HubSpot-RateLimit-Max" not in search.headers


def test_injected_429_format_and_path_filter(fake_hubspot, http):
    fake_hubspot.fail_next(1, status=429, retry_after=3, path_contains="/owners")

    other = _get(http, fake_hubspot, "/crm/v3/objects/contacts/1")
    limited = _get(http, fake_hubspot, "/crm/v3/owners/")
    after = _get(http, fake_hubspot, "/crm/v3/owners/")

    assert (other.status, limited.status, after.status) == (404, 429, 200)
    body = limited.json()
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert body["correlationId"]
    assert limited.headers["Retry-After"] == "3"
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_injected_raw_body_is_sent_as_is(fake_hubspot, http):
    fake_hubspot.fail_next(1, status=502, body="<html>Bad gateway</html>")

    resp = _get(http, fake_hubspot, "/crm/v3/owners/")

    assert resp.status == 502 and resp.data == b"<html>Bad gateway</html>"


def test_enforced_rate_limit(fake_hubspot, http):
    fake_hubspot.enforce_rate_limit = True

    statuses = [_get(http, fake_hubspot, "/crm/v3/owners/").status for _ in range(101)]

    assert statuses[:100] == [200] * 100 and statuses[100] == 429


def test_reset_clears_data_requests_and_faults(fake_hubspot, http):
    fake_hubspot.add_contact("1", {})
    fake_hubspot.fail_next(3, status=500)
    fake_hubspot.search_cap = 5

    fake_hubspot.reset()

    assert fake_hubspot.contacts == {} and fake_hubspot.requests == []
    assert fake_hubspot.search_cap == 10_000
    assert _get(http, fake_hubspot, "/crm/v3/owners/").status == 200


def test_set_property_bumps_lastmodifieddate(fake_hubspot):
    fake_hubspot.add_contact("1", {"hs_lead_status": "NEW"}, updated_at=T0)

    fake_hubspot.set_property("1", "hs_lead_status", "OPEN", at=T0 + timedelta(minutes=5))

    assert fake_hubspot.contacts["1"]["hs_lead_status"] == "OPEN"
    assert fake_hubspot.contacts["1"]["lastmodifieddate"] == "2026-11-20T15:05:00.000Z"


def test_search_cap_is_a_400_for_offset_paging(fake_hubspot, sdk):
    fake_hubspot.search_cap = 50
    for i in range(60):
        fake_hubspot.add_contact(str(100 + i), {}, updated_at=T0 + timedelta(seconds=i))
    api = sdk.crm.contacts.search_api

    page = api.do_search(public_object_search_request={"limit": 40, "after": "0"})
    last = api.do_search(public_object_search_request={"limit": 40, "after": "40"})

    assert page.total == 60 and len(page.results) == 40 and page.paging.next.after == "40"
    assert len(last.results) == 10  # the cap cuts the page short
    with pytest.raises(ApiException) as caught:
        api.do_search(public_object_search_request={"limit": 40, "after": "50"})
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"propertyName": "hs_lead_status", "operator": "EQ", "value": "new"}, {"1", "3"}),
        ({"propertyName": "hs_lead_status", "operator": "NEQ", "value": "NEW"}, {"2", "4"}),
        ({"propertyName": "hs_lead_status", "operator": "IN", "values": ["OPEN", "NEW"]},
         {"1", "2", "3"}),
        ({"propertyName": "hs_lead_status", "operator": "NOT_HAS_PROPERTY"}, {"4"}),
        ({"propertyName": "hs_lead_status", "operator": "HAS_PROPERTY"}, {"1", "2", "3"}),
        ({"propertyName": "score", "operator": "GT", "value": "9"}, {"2", "3"}),
        ({"propertyName": "score", "operator": "BETWEEN", "value": "5", "highValue": "20"},
         {"1", "2"}),
        ({"propertyName": "notes", "operator": "CONTAINS_TOKEN", "value": "pricing"}, {"1"}),
        ({"propertyName": "notes", "operator": "CONTAINS_TOKEN", "value": "pric*"}, {"1"}),
        ({"propertyName": "lastmodifieddate", "operator": "LTE",
          "value": str(int((T0 + timedelta(seconds=1)).timestamp() * 1000))}, {"1", "2"}),
    ],
)  # fmt: skip
def test_search_operators(fake_hubspot, sdk, flt, expected):
    rows = [
        ("1", {"hs_lead_status": "NEW", "score": "5", "notes": "asked about pricing."}),
        ("2", {"hs_lead_status": "OPEN", "score": "10", "notes": "call back"}),
        ("3", {"hs_lead_status": "NEW", "score": "100"}),
        ("4", {}),
    ]
    for i, (cid, props) in enumerate(rows):
        fake_hubspot.add_contact(cid, props, updated_at=T0 + timedelta(seconds=i))

    page = sdk.crm.contacts.search_api.do_search(
        public_object_search_request={"filterGroups": [{"filters": [flt]}], "limit": 100}
    )

    assert {r.id for r in page.results} == expected and page.total == len(expected)


def test_search_rejects_too_many_filters_and_big_limits(fake_hubspot, sdk):
    api = sdk.crm.contacts.search_api
    flt = {"propertyName": "email", "operator": "HAS_PROPERTY"}

    for request in ({"filterGroups": [{"filters": [flt] * 7}]}, {"limit": 201}):
        with pytest.raises(ApiException) as caught:
            api.do_search(public_object_search_request=request)
        assert caught.value.status == 400


def test_v4_associations_after_a_create(fake_hubspot, hubspot_client, sdk):
    fake_hubspot.add_contact("101", {})
    task_id = hubspot_client.create_task(
        "101", subject="s", body="b", owner_id=None, due=T0, idempotency_key="k"
    )

    page = sdk.crm.associations.v4.basic_api.get_page("contacts", "101", "tasks")

    assert [str(r.to_object_id) for r in page.results] == [task_id]
    assert page.results[0].association_types[0].type_id == 203


def test_standalone_start_stop():
    fake = FakeHubSpot(token="t", search_cap=3)
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    with fake:
        url = fake.base_url
        assert url.startswith("http://127.0.0.1:") and fake.search_cap == 3
    with pytest.raises(RuntimeError):
        _ = fake.base_url
