"""HubSpotWriter: each op lands in the (fake) CRM with the right shape; bad rows fail clearly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from integrations.hubspot import engagements as eng
from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.fake import FakeHubSpot
from integrations.hubspot.writeback import TOUCH_OBJECT_TYPES, HubSpotWriter, SinglePortal
from sla_bot.clock import FrozenClock
from sla_bot.outbox import deliver_due
from tests.writeback.util import PORTAL, add_row, result, row

DUE = "2026-11-20T17:00:00Z"


@pytest.fixture
def writer(fake_hubspot: FakeHubSpot, make_hubspot_client: Callable[..., Any]) -> HubSpotWriter:
    fake_hubspot.add_contact("901", {"email": "lead@example.com"})
    return HubSpotWriter(SinglePortal(make_hubspot_client(max_retries=0), PORTAL))


def deliver(engine: Engine, writer: HubSpotWriter, clock: FrozenClock) -> tuple[int, int]:
    return deliver_due(engine, writer, now=clock.now())


def only(fake: FakeHubSpot, kind: str) -> dict[str, Any]:
    created = fake.created(kind)
    assert len(created) == 1, created
    return created[0]


def test_update_contact_patches_the_properties(engine, clock, fake_hubspot, writer) -> None:
    # The portal has these custom properties (its contacts carry them).
    custom = {"sla_breached": "", "sla_minutes": "", "notes": ""}
    fake_hubspot.add_contact("901", {"email": "lead@example.com", **custom})
    props = {"hs_lead_status": "NEW", "sla_breached": True, "sla_minutes": 15, "notes": None}
    payload = {"op": "update_contact", "contact_id": "901", "properties": props}
    add_row(engine, "u1", payload, now=clock.now())
    assert deliver(engine, writer, clock) == (1, 0)
    contact = fake_hubspot.contacts["901"]
    assert contact["hs_lead_status"] == "NEW"
    assert (contact["sla_breached"], contact["sla_minutes"], contact["notes"]) == ("true", "15", "")
    assert row(engine, "u1").status == "sent"
    assert result(engine, "u1") == {"updated": True, "contact_id": "901"}


def test_a_property_the_portal_does_not_have_fails_for_good(
    engine, clock, fake_hubspot, writer
) -> None:
    payload = {"op": "update_contact", "contact_id": "901", "properties": {"no_such_prop": "x"}}
    add_row(engine, "u2", payload, now=clock.now())
    assert deliver(engine, writer, clock) == (0, 1)
    assert 'Property \\"no_such_prop\\" does not exist' in (row(engine, "u2").error or "")


def test_create_task_is_associated_and_owned(engine, clock, fake_hubspot, writer) -> None:
    payload = {
        "op": "create_task",
        "contact_id": "901",
        "subject": "Call the lead",
        "body": "First touch is overdue",
        "owner_id": "77",
        "due": DUE,
    }
    add_row(engine, "t1", payload, now=clock.now())
    assert deliver(engine, writer, clock) == (1, 0)
    task = only(fake_hubspot, "tasks")
    props = task["properties"]
    assert props["hs_task_subject"] == "Call the lead"
    assert props["hs_task_body"].startswith("First touch is overdue")
    assert eng.has_marker(props["hs_task_body"], eng.idempotency_token("t1"))
    assert props["hubspot_owner_id"] == "77"
    assert props["hs_timestamp"] == "2026-11-20T17:00:00.000Z"
    assert props["hs_task_status"] == "NOT_STARTED"
    assert task["associations"] == [{"to_type": "contacts", "to_id": "901", "type_id": 204}]
    assert result(engine, "t1") == {"object_id": task["id"], "object_type": "tasks"}


def test_create_note(engine, clock, fake_hubspot, writer) -> None:
    payload = {"op": "create_note", "contact_id": 901, "body": "Escalated", "owner_id": None}
    add_row(engine, "n1", {**payload, "at": "2026-11-20T15:00:00+00:00"}, now=clock.now())
    assert deliver(engine, writer, clock) == (1, 0)
    note = only(fake_hubspot, "notes")
    assert note["properties"]["hs_note_body"].startswith("Escalated")
    assert "hubspot_owner_id" not in note["properties"]
    assert note["associations"] == [{"to_type": "contacts", "to_id": "901", "type_id": 202}]
    assert result(engine, "n1")["object_id"] == note["id"]


CONNECTED = eng.CALL_DISPOSITION["connected"]


@pytest.mark.parametrize(
    ("kind", "outcome", "object_type", "type_id", "check"),
    [
        ("call", "connect", "calls", 194, ("hs_call_disposition", CONNECTED)),
        ("voicemail", "attempt", "calls", 194, ("hs_call_title", "Left voicemail")),
        ("email", "attempt", "emails", 198, ("hs_email_status", "SENT")),
        ("meeting", "attempt", "meetings", 200, ("hs_meeting_outcome", "NO_SHOW")),
        ("linkedin", "connect", "communications", 81, ("hs_communication_logged_from", "CRM")),
    ],
)
def test_create_engagement_maps_every_kind(
    engine, clock, fake_hubspot, writer, kind, outcome, object_type, type_id, check
) -> None:
    payload = {
        "op": "create_engagement",
        "contact_id": "901",
        "kind": kind,
        "outcome": outcome,
        "note": "logged from Slack",
        "owner_id": "77",
        "at": "2026-11-20T14:30:00Z",
    }
    add_row(engine, "e1", payload, now=clock.now())
    assert deliver(engine, writer, clock) == (1, 0)
    touch = only(fake_hubspot, object_type)
    assert touch["properties"][check[0]] == check[1]
    assert touch["properties"]["hubspot_owner_id"] == "77"
    assert touch["associations"] == [{"to_type": "contacts", "to_id": "901", "type_id": type_id}]
    assert result(engine, "e1") == {"object_id": touch["id"], "object_type": object_type}
    # HubSpot's roll-ups see the touch, so the engine will see the lead as contacted.
    assert fake_hubspot.contacts["901"]["num_contacted_notes"] == "1"


def test_touch_object_types_match_the_engagement_mapping() -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    for kind, object_type in TOUCH_OBJECT_TYPES.items():
        spec, _ = eng.touch_properties(kind, "attempt", note="", owner_id=None, at=at, token="t")
        assert spec.object_type == object_type
    assert set(TOUCH_OBJECT_TYPES) == set(eng.TOUCH_KINDS)


def test_404_fails_the_row_with_hubspots_message(engine, clock, fake_hubspot, writer) -> None:
    payload = {"op": "update_contact", "contact_id": "404404", "properties": {"a": "b"}}
    add_row(engine, "gone", payload, now=clock.now())
    assert deliver(engine, writer, clock) == (0, 1)
    failed = row(engine, "gone")
    assert failed.status == "failed"
    assert failed.next_attempt_at is None
    assert "HTTP 404" in failed.error and "resource not found" in failed.error
    assert "correlationId=" in failed.error


def test_403_missing_scopes_is_permanent(engine, clock, fake_hubspot, writer) -> None:
    fake_hubspot.fail_next(1, status=403, path_contains="/tasks")
    payload = {"op": "create_task", "contact_id": "901", "subject": "s", "body": "", "due": DUE}
    add_row(engine, "scopes", payload, now=clock.now())
    assert deliver(engine, writer, clock) == (0, 1)
    assert "MISSING_SCOPES" in row(engine, "scopes").error
    assert fake_hubspot.created("tasks") == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"op": "delete_contact", "contact_id": "901"}, "unknown HubSpot op 'delete_contact'"),
        ({"contact_id": "901"}, "unknown HubSpot op None"),
        ({"op": "update_contact", "properties": {"a": "b"}}, "contact_id is required"),
        ({"op": "update_contact", "contact_id": "x1", "properties": {}}, "numeric HubSpot id"),
        ({"op": "update_contact", "contact_id": "901", "properties": {}}, "non-empty object"),
        (
            {"op": "update_contact", "contact_id": "901", "properties": {"a": [1]}},
            "must be scalars: a",
        ),
        (
            {"op": "create_task", "contact_id": "901", "subject": "s", "due": "tomorrow"},
            "due is not an ISO-8601 timestamp",
        ),
        (
            {"op": "create_task", "contact_id": "901", "subject": "s", "due": "2026-11-20T17:00"},
            "due needs a timezone",
        ),
        ({"op": "create_note", "contact_id": "901", "at": DUE}, "body must be a non-empty"),
        (
            {"op": "create_engagement", "contact_id": "901", "kind": "fax", "at": DUE},
            "kind must be one of call, email",
        ),
    ],
)
def test_malformed_rows_fail_without_calling_hubspot(
    engine, clock, fake_hubspot, writer, payload, message
) -> None:
    add_row(engine, "bad", payload, now=clock.now())
    assert deliver(engine, writer, clock) == (0, 1)
    failed = row(engine, "bad")
    assert failed.status == "failed"
    assert message in failed.error
    assert fake_hubspot.requests == []


def test_the_tokens_portal_is_discovered_and_other_portals_refused(
    engine, clock, fake_hubspot, hubspot_client: HubSpotClient
) -> None:
    fake_hubspot.add_contact("901")
    writer = HubSpotWriter(hubspot_client)
    payload = {"op": "update_contact", "contact_id": "901", "properties": {"company": "1"}}
    add_row(engine, "ours", payload, now=clock.now())
    add_row(engine, "theirs", payload, now=clock.now(), portal_id=999)
    assert deliver(engine, writer, clock) == (1, 1)
    assert row(engine, "ours").status == "sent"
    assert "no HubSpot token for portal 999 (the token is for portal 62515)" in (
        row(engine, "theirs").error
    )
    discovery = [r for r in fake_hubspot.requests if r.path == "/account-info/v3/details"]
    assert len(discovery) == 1  # once, then cached


def test_per_portal_clients(engine, clock, fake_hubspot, hubspot_client) -> None:
    fake_hubspot.add_contact("901")
    writer = HubSpotWriter({PORTAL: hubspot_client})
    payload = {"op": "update_contact", "contact_id": "901", "properties": {"company": "2"}}
    add_row(engine, "a", payload, now=clock.now())
    add_row(engine, "b", payload, now=clock.now(), portal_id=7)
    assert deliver(engine, writer, clock) == (1, 1)
    assert fake_hubspot.contacts["901"]["company"] == "2"
    assert row(engine, "b").error == "no HubSpot token for portal 7"


def test_revoked_token_waits_instead_of_dropping_rows(
    engine, clock, fake_hubspot, make_hubspot_client
) -> None:
    fake_hubspot.add_contact("901")
    stale = make_hubspot_client(access_token="pat-na1-revoked", max_retries=0)
    payload = {"op": "update_contact", "contact_id": "901", "properties": {"company": "3"}}
    add_row(engine, "auth", payload, now=clock.now())
    assert deliver(engine, HubSpotWriter(SinglePortal(stale, PORTAL)), clock) == (0, 0)
    waiting = row(engine, "auth")
    assert waiting.status == "pending" and "HTTP 401" in waiting.error
    assert waiting.next_attempt_at >= clock.now() + timedelta(minutes=5)
