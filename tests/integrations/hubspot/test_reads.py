"""Batch reads, single reads and owner lookups through the real SDK against the fake."""

from __future__ import annotations

from datetime import UTC, datetime

from integrations.hubspot.models import Owner, Team
from tests.fixtures_hubspot import HUBSPOT_TEST_TOKEN

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
BATCH_READ = "/crm/v3/objects/contacts/batch/read"


def _seed(fake, n: int, start: int = 1000) -> list[str]:
    ids = [str(start + i) for i in range(n)]
    for i, cid in enumerate(ids):
        fake.add_contact(cid, {"email": f"lead{i}@example.com", "hs_lead_status": "NEW"})
    return ids


def test_batch_read_250_ids_takes_three_calls_of_at_most_100(fake_hubspot, hubspot_client):
    ids = _seed(fake_hubspot, 250)

    contacts = hubspot_client.batch_read_contacts(ids, ["email", "hs_lead_status"])

    assert set(contacts) == set(ids)
    assert contacts["1007"].properties["email"] == "lead7@example.com"
    assert contacts["1007"].properties["hs_lead_status"] == "NEW"
    assert contacts["1007"].updated_at is not None and contacts["1007"].updated_at.tzinfo == UTC
    calls = [r for r in fake_hubspot.requests if r.path == BATCH_READ]
    assert [len(r.json["inputs"]) for r in calls] == [100, 100, 50]
    assert all(r.json["properties"] == ["email", "hs_lead_status"] for r in calls)
    assert all(r.headers["Authorization"] == f"Bearer {HUBSPOT_TEST_TOKEN}" for r in calls)
    assert all("User-Agent" in r.headers for r in calls)


def test_batch_read_missing_ids_are_absent_after_a_207(fake_hubspot, hubspot_client):
    _seed(fake_hubspot, 3)

    contacts = hubspot_client.batch_read_contacts(["1000", "999999", "1002", "888888"], ["email"])

    assert set(contacts) == {"1000", "1002"}
    assert [r.status for r in fake_hubspot.requests] == [207]


def test_batch_read_deduplicates_ids_and_skips_empty_input(fake_hubspot, hubspot_client):
    _seed(fake_hubspot, 2)

    assert hubspot_client.batch_read_contacts([], ["email"]) == {}
    contacts = hubspot_client.batch_read_contacts(["1000", "1001", "1000"], ["email"])

    assert set(contacts) == {"1000", "1001"}
    assert [len(r.json["inputs"]) for r in fake_hubspot.requests] == [2]


def test_get_contact_and_404_is_none(fake_hubspot, hubspot_client):
    _seed(fake_hubspot, 1)

    contact = hubspot_client.get_contact("1000", ["email"])

    assert contact is not None and contact.properties["email"] == "lead0@example.com"
    assert hubspot_client.get_contact("424242", ["email"]) is None
    assert [r.status for r in fake_hubspot.requests] == [200, 404]


def test_update_contact_patches_properties(fake_hubspot, hubspot_client):
    _seed(fake_hubspot, 1)

    hubspot_client.update_contact("1000", {"hs_lead_status": "ATTEMPTED_TO_CONTACT"})

    assert fake_hubspot.contacts["1000"]["hs_lead_status"] == "ATTEMPTED_TO_CONTACT"
    (patch,) = fake_hubspot.requests
    assert (patch.method, patch.path) == ("PATCH", "/crm/v3/objects/contacts/1000")
    assert patch.json == {"properties": {"hs_lead_status": "ATTEMPTED_TO_CONTACT"}}


def test_owner_with_teams(fake_hubspot, hubspot_client):
    fake_hubspot.add_owner(
        "501",
        "ann@example.com",
        "Ann",
        "Lee",
        teams=[("9", "East", True), {"id": "10", "name": "Inbound", "primary": False}],
        user_id=77,
    )

    owner = hubspot_client.get_owner("501")

    assert owner == Owner(
        id="501",
        email="ann@example.com",
        first_name="Ann",
        last_name="Lee",
        user_id=77,
        teams=(Team("9", "East", True), Team("10", "Inbound", False)),
        archived=False,
    )
    assert owner.name == "Ann Lee"
    assert owner.primary_team == Team("9", "East", True)
    (req,) = fake_hubspot.requests
    assert req.path == "/crm/v3/owners/501"
    assert req.query["idProperty"] == "id"
    assert req.query["archived"].lower() == "false"  # the SDK sends Python's "False"


def test_missing_owner_is_none_and_archived_owner_is_found(fake_hubspot, hubspot_client):
    fake_hubspot.add_owner("502", "gone@example.com", "Old", "Rep", archived=True)

    assert hubspot_client.get_owner("999") is None
    gone = hubspot_client.get_owner("502")

    assert gone is not None and gone.archived and gone.user_id is None
    assert [r.status for r in fake_hubspot.requests] == [404, 404, 404, 200]


def test_owner_name_falls_back_to_email_then_id(fake_hubspot, hubspot_client):
    fake_hubspot.add_owner("503", "solo@example.com")
    fake_hubspot.add_owner("504", None)

    assert hubspot_client.get_owner("503").name == "solo@example.com"
    assert hubspot_client.get_owner("504").name == "owner 504"


def test_find_owner_by_email(fake_hubspot, hubspot_client):
    fake_hubspot.add_owner("601", "a@example.com", "A", "One")
    fake_hubspot.add_owner("602", "b@example.com", "B", "Two")

    assert hubspot_client.find_owner_by_email("B@example.com").id == "602"
    assert hubspot_client.find_owner_by_email("nobody@example.com") is None
