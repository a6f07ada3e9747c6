"""Retry, backoff and error classification through the real SDK against the fake."""

from __future__ import annotations

import logging

import pytest

from integrations.hubspot.errors import PermanentHubSpotError, TransientHubSpotError
from tests.fixtures_hubspot import HUBSPOT_TEST_TOKEN

BATCH_READ = "/crm/v3/objects/contacts/batch/read"


def _statuses(fake, path: str, method: str | None = None) -> list[int | None]:
    return [
        r.status for r in fake.requests if r.path == path and (method is None or r.method == method)
    ]


def test_429_with_retry_after_on_batch_read_post_is_retried(
    fake_hubspot, hubspot_client, hubspot_clock
):
    fake_hubspot.add_contact("1", {"email": "a@example.com"})
    fake_hubspot.fail_next(1, status=429, retry_after=7, path_contains=BATCH_READ)

    contacts = hubspot_client.batch_read_contacts(["1"], ["email"])

    assert contacts["1"].properties["email"] == "a@example.com"
    assert _statuses(fake_hubspot, BATCH_READ) == [429, 200]
    assert hubspot_clock.sleeps == [7.0]


def test_429_body_is_hubspots_rate_limit_format(fake_hubspot, make_hubspot_client):
    client = make_hubspot_client(max_retries=0)
    fake_hubspot.fail_next(1, status=429)

    with pytest.raises(TransientHubSpotError) as caught:
        client.batch_read_contacts(["1"], ["email"])

    err = caught.value
    assert (err.status, err.category, err.policy_name) == (
        429,
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert err.message == "You have reached your ten_secondly_rolling limit."
    assert err.correlation_id and not err.ambiguous


def test_429_without_retry_after_waits_at_least_a_second(
    fake_hubspot, hubspot_client, hubspot_clock
):
    fake_hubspot.add_owner("5", "a@example.com")
    fake_hubspot.fail_next(2, status=429)

    assert hubspot_client.get_owner("5").id == "5"
    assert len(hubspot_clock.sleeps) == 2 and all(s >= 1.0 for s in hubspot_clock.sleeps)


def test_503_twice_then_success_on_patch(fake_hubspot, hubspot_client, hubspot_clock):
    fake_hubspot.add_contact("101", {"hs_lead_status": "NEW"})
    path = "/crm/v3/objects/contacts/101"
    fake_hubspot.fail_next(2, status=503, path_contains=path, method="PATCH")

    hubspot_client.update_contact("101", {"hs_lead_status": "ATTEMPTED_TO_CONTACT"})

    assert fake_hubspot.contacts["101"]["hs_lead_status"] == "ATTEMPTED_TO_CONTACT"
    assert _statuses(fake_hubspot, path, "PATCH") == [503, 503, 200]
    # full jitter: retry n waits uniform(0, min(cap, 0.5 * 2**n))
    assert len(hubspot_clock.sleeps) == 2
    assert 0 <= hubspot_clock.sleeps[0] <= 0.5 and 0 <= hubspot_clock.sleeps[1] <= 1.0


def test_retry_after_on_503_is_honoured(fake_hubspot, hubspot_client, hubspot_clock):
    fake_hubspot.add_contact("1", {})
    fake_hubspot.fail_next(1, status=503, retry_after=3, path_contains="/contacts/1")

    hubspot_client.update_contact("1", {"firstname": "Ada"})

    assert hubspot_clock.sleeps == [3.0]


def test_exhausted_retries_raise_transient(fake_hubspot, make_hubspot_client, hubspot_clock):
    client = make_hubspot_client(max_retries=3)
    fake_hubspot.add_contact("1", {})
    fake_hubspot.fail_next(10, status=502, path_contains="/contacts/1")

    with pytest.raises(TransientHubSpotError) as caught:
        client.update_contact("1", {"firstname": "Ada"})

    err = caught.value
    assert err.transient and err.status == 502 and err.attempts == 4 and err.ambiguous
    assert err.operation == "update contact"
    assert _statuses(fake_hubspot, "/crm/v3/objects/contacts/1") == [502] * 4
    assert len(hubspot_clock.sleeps) == 3
    assert all(s <= 0.5 * 2**i for i, s in enumerate(hubspot_clock.sleeps))


def test_400_is_permanent_after_one_request(fake_hubspot, hubspot_client, hubspot_clock):
    fake_hubspot.add_contact("1", {})

    with pytest.raises(PermanentHubSpotError) as caught:
        hubspot_client.update_contact("1", {"lastmodifieddate": "2020-01-01"})

    err = caught.value
    assert not err.transient and err.status == 400 and err.category == "VALIDATION_ERROR"
    assert "read only" in err.message and err.correlation_id
    assert err.correlation_id in str(err)
    assert len(fake_hubspot.requests) == 1 and hubspot_clock.sleeps == []


def test_injected_400_on_post_is_permanent(fake_hubspot, hubspot_client, hubspot_clock):
    body = {"status": "error", "message": "bad input", "category": "VALIDATION_ERROR"}
    fake_hubspot.fail_next(1, status=400, path_contains=BATCH_READ, body=body)

    with pytest.raises(PermanentHubSpotError) as caught:
        hubspot_client.batch_read_contacts(["1"], ["email"])

    assert caught.value.message == "bad input"
    assert len(fake_hubspot.requests) == 1 and hubspot_clock.sleeps == []


def test_404_on_patch_is_permanent_after_one_request(fake_hubspot, hubspot_client):
    with pytest.raises(PermanentHubSpotError) as caught:
        hubspot_client.update_contact("31337", {"firstname": "Ada"})

    assert caught.value.status == 404 and caught.value.category == "OBJECT_NOT_FOUND"
    assert len(fake_hubspot.requests) == 1


def test_wrong_token_is_a_permanent_401(fake_hubspot, make_hubspot_client):
    client = make_hubspot_client(access_token="not-the-token")

    with pytest.raises(PermanentHubSpotError) as caught:
        client.get_owner("1")

    assert caught.value.status == 401 and caught.value.category == "INVALID_AUTHENTICATION"
    assert fake_hubspot.requests[0].headers["Authorization"] == "Bearer not-the-token"
    assert len(fake_hubspot.requests) == 1


def test_read_timeout_is_retried(fake_hubspot, make_hubspot_client, hubspot_clock):
    client = make_hubspot_client(timeout=(0.5, 0.3))
    fake_hubspot.add_owner("7", "rep@example.com")
    fake_hubspot.delay_next(1, 1.0, path_contains="/crm/v3/owners/7")

    owner = client.get_owner("7")

    assert owner is not None and owner.email == "rep@example.com"
    assert len([r for r in fake_hubspot.requests if r.path == "/crm/v3/owners/7"]) == 2
    assert len(hubspot_clock.sleeps) == 1


def test_read_timeout_exhausted_is_transient_and_ambiguous(fake_hubspot, make_hubspot_client):
    client = make_hubspot_client(timeout=(0.5, 0.2), max_retries=1)
    fake_hubspot.add_contact("1", {})
    fake_hubspot.delay_next(2, 0.6, path_contains="/contacts/1")

    with pytest.raises(TransientHubSpotError) as caught:
        client.update_contact("1", {"firstname": "Ada"})

    assert caught.value.status is None and caught.value.ambiguous
    assert "timed out" in caught.value.message and caught.value.attempts == 2


def test_connection_refused_is_transient_and_not_ambiguous(make_hubspot_client, hubspot_clock):
    client = make_hubspot_client(base_url="http://127.0.0.1:9", max_retries=2)

    with pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1")

    assert caught.value.status is None and not caught.value.ambiguous
    assert caught.value.attempts == 3 and len(hubspot_clock.sleeps) == 2


def test_daily_limit_is_not_retried_inline(fake_hubspot, hubspot_client, hubspot_clock):
    daily = {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
        "policyName": "DAILY",
    }
    fake_hubspot.fail_next(1, status=429, body=daily)

    with pytest.raises(TransientHubSpotError) as caught:
        hubspot_client.get_owner("1")

    assert caught.value.policy_name == "DAILY" and caught.value.attempts == 1
    assert hubspot_clock.sleeps == []


def test_retry_after_beyond_the_maximum_is_raised_for_the_caller(
    fake_hubspot, make_hubspot_client, hubspot_clock
):
    client = make_hubspot_client(max_retry_after=30)
    fake_hubspot.fail_next(1, status=429, retry_after=120)

    with pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1")

    assert caught.value.retry_after == 120.0 and hubspot_clock.sleeps == []


def test_random_failures_are_absorbed(fake_hubspot, make_hubspot_client):
    client = make_hubspot_client(max_retries=10)
    for i in range(20):
        fake_hubspot.add_contact(str(i), {"hs_lead_status": "NEW"})
    fake_hubspot.failure_rate(0.3, statuses=(429, 500, 503), seed=11)

    for i in range(20):
        client.update_contact(str(i), {"hs_lead_status": "OPEN"})
    found = client.batch_read_contacts([str(i) for i in range(20)], ["hs_lead_status"])

    assert {c.properties["hs_lead_status"] for c in found.values()} == {"OPEN"}
    failed = [r.status for r in fake_hubspot.requests if r.status in (429, 500, 503)]
    assert len(failed) >= 3  # the injection really happened


def test_token_never_appears_in_errors_or_logs(fake_hubspot, make_hubspot_client, caplog):
    client = make_hubspot_client(max_retries=2)
    fake_hubspot.fail_next(5, status=500)

    with caplog.at_level(logging.DEBUG), pytest.raises(TransientHubSpotError) as caught:
        client.get_owner("1")

    assert len([r for r in caplog.records if r.name == "integrations.hubspot"]) == 2
    for text in (caplog.text, str(caught.value), repr(caught.value), repr(client)):
        assert HUBSPOT_TEST_TOKEN not in text
