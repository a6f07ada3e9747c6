"""Tasks, notes and logged touches: payload shapes and idempotency after ambiguous failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.hubspot.engagements import idempotency_token
from integrations.hubspot.errors import PermanentHubSpotError, TransientHubSpotError

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
TASKS = "/crm/v3/objects/tasks"


@pytest.fixture
def contact(fake_hubspot) -> str:
    fake_hubspot.add_contact("101", {"email": "lead@example.com"})
    return "101"


def _calls(fake) -> list[tuple[str, str, int | None]]:
    return [(r.method, r.path, r.status) for r in fake.requests]


def _task(client, contact: str, key: str = "sla:101:first-touch") -> str:
    return client.create_task(
        contact,
        subject="Call the new lead",
        body="Lead is waiting for a first touch.",
        owner_id="501",
        due=T0 + timedelta(hours=1),
        idempotency_key=key,
    )


def test_create_task_shape(fake_hubspot, hubspot_client, contact):
    task_id = _task(hubspot_client, contact)

    (task,) = fake_hubspot.created("tasks")
    assert task["id"] == task_id
    props = task["properties"]
    assert props["hs_task_subject"] == "Call the new lead"
    assert props["hs_task_body"].startswith("Lead is waiting for a first touch.")
    assert props["hs_task_body"].endswith(f"[sla-bot:{idempotency_token('sla:101:first-touch')}]")
    assert props["hs_timestamp"] == "2026-11-20T16:00:00.000Z"
    assert (props["hubspot_owner_id"], props["hs_task_status"]) == ("501", "NOT_STARTED")
    assert task["associations"] == [{"to_type": "contacts", "to_id": "101", "type_id": 204}]
    (req,) = fake_hubspot.requests
    assert req.json["associations"][0]["types"] == [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}
    ]


def test_create_note(fake_hubspot, hubspot_client, contact):
    note_id = hubspot_client.create_note(
        contact, body="Escalated to the manager.", owner_id=None, at=T0, idempotency_key="n-1"
    )

    (note,) = fake_hubspot.created("notes")
    assert note["id"] == note_id and "hubspot_owner_id" not in note["properties"]
    assert note["properties"]["hs_note_body"].startswith("Escalated to the manager.")
    assert note["associations"][0]["type_id"] == 202
    assert "num_contacted_notes" not in fake_hubspot.contacts[contact]  # notes are not touches


@pytest.mark.parametrize(
    ("kind", "outcome", "object_type", "type_id", "expected"),
    [
        ("call", "connect", "calls", 194,
         {"hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
          "hs_call_status": "COMPLETED", "hs_call_direction": "OUTBOUND"}),
        ("call", "attempt", "calls", 194,
         {"hs_call_disposition": "73a0d17f-1163-4015-bdd5-ec830791da20"}),
        ("voicemail", "attempt", "calls", 194,
         {"hs_call_disposition": "b2cf5968-551e-4856-9783-52b3da59a7d0"}),
        ("email", "attempt", "emails", 198,
         {"hs_email_direction": "EMAIL", "hs_email_status": "SENT"}),
        ("meeting", "connect", "meetings", 200, {"hs_meeting_outcome": "COMPLETED"}),
        ("meeting", "attempt", "meetings", 200, {"hs_meeting_outcome": "NO_SHOW"}),
        ("linkedin", "attempt", "communications", 81,
         {"hs_communication_channel_type": "LINKEDIN_MESSAGE",
          "hs_communication_logged_from": "CRM"}),
    ],
)  # fmt: skip
def test_touch_mapping(
    fake_hubspot, hubspot_client, contact, kind, outcome, object_type, type_id, expected
):
    touch_id = hubspot_client.create_engagement(
        contact,
        kind=kind,
        outcome=outcome,
        note="Talked about pricing",
        owner_id="501",
        at=T0,
        idempotency_key=f"touch-{kind}-{outcome}",
    )

    (made,) = fake_hubspot.created(object_type)
    assert made["id"] == touch_id
    assert made["associations"] == [{"to_type": "contacts", "to_id": contact, "type_id": type_id}]
    assert expected.items() <= made["properties"].items()
    assert made["properties"]["hs_timestamp"] == "2026-11-20T15:00:00.000Z"
    bodies = [v for k, v in made["properties"].items() if k.endswith(("_body", "_text"))]
    assert any(b.startswith("Talked about pricing") for b in bodies)
    assert fake_hubspot.contacts[contact]["num_contacted_notes"] == "1"


def test_unknown_touch_kind_is_refused(hubspot_client, contact):
    with pytest.raises(ValueError):
        hubspot_client.create_engagement(
            contact, kind="fax", outcome="attempt", note="", owner_id=None, at=T0,
            idempotency_key="x",
        )  # fmt: skip


def test_ambiguous_500_after_the_write_is_not_resent_inline(
    fake_hubspot, hubspot_client, hubspot_clock, contact
):
    """An ambiguous create is raised at once: the search index lags, so a search now cannot
    tell. The next call with the key (the outbox, INDEX_LAG later) searches first."""
    fake_hubspot.fail_next(1, status=500, path_contains=TASKS, method="POST", apply=True)

    with pytest.raises(TransientHubSpotError) as caught:
        _task(hubspot_client, contact)
    assert caught.value.ambiguous
    assert _calls(fake_hubspot) == [("POST", TASKS, 500)] and hubspot_clock.sleeps == []

    task_id = _task(hubspot_client, contact)

    (task,) = fake_hubspot.created("tasks")
    assert task["id"] == task_id
    assert _calls(fake_hubspot) == [("POST", TASKS, 500), ("POST", f"{TASKS}/search", 200)]
    token = idempotency_token("sla:101:first-touch")
    search = fake_hubspot.requests[1].json["filterGroups"][0]["filters"][0]
    assert search == {"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN", "value": token}


def test_ambiguous_500_before_the_write_creates_once(fake_hubspot, hubspot_client, contact):
    fake_hubspot.fail_next(1, status=500, path_contains=TASKS, method="POST")

    with pytest.raises(TransientHubSpotError):
        _task(hubspot_client, contact)
    task_id = _task(hubspot_client, contact)

    assert [t["id"] for t in fake_hubspot.created("tasks")] == [task_id]
    assert _calls(fake_hubspot) == [
        ("POST", TASKS, 500),
        ("POST", f"{TASKS}/search", 200),
        ("POST", TASKS, 201),
    ]


def test_429_on_create_is_resent_without_a_search(
    fake_hubspot, hubspot_client, hubspot_clock, contact
):
    fake_hubspot.fail_next(1, status=429, retry_after=2, path_contains=TASKS, method="POST")

    _task(hubspot_client, contact)

    assert _calls(fake_hubspot) == [("POST", TASKS, 429), ("POST", TASKS, 201)]
    assert hubspot_clock.sleeps == [2.0] and len(fake_hubspot.created("tasks")) == 1


def test_timeout_after_the_write_does_not_duplicate(fake_hubspot, make_hubspot_client, contact):
    client = make_hubspot_client(timeout=(0.5, 0.3))
    fake_hubspot.delay_next(1, 1.0, path_contains="/crm/v3/objects/calls")

    def log_call() -> str:
        return client.create_engagement(
            contact, kind="call", outcome="attempt", note="No answer", owner_id=None, at=T0,
            idempotency_key="call-1",
        )  # fmt: skip

    with pytest.raises(TransientHubSpotError) as caught:
        log_call()
    assert caught.value.ambiguous
    touch_id = log_call()

    assert [c["id"] for c in fake_hubspot.created("calls")] == [touch_id]
    assert [r.path for r in fake_hubspot.requests] == [
        "/crm/v3/objects/calls",
        "/crm/v3/objects/calls/search",
    ]


def test_same_key_twice_returns_the_same_id_without_a_request(
    fake_hubspot, hubspot_client, contact
):
    first = _task(hubspot_client, contact)
    second = _task(hubspot_client, contact)
    other = _task(hubspot_client, contact, key="sla:101:second-touch")

    assert first == second != other
    assert len(fake_hubspot.created("tasks")) == 2 and len(fake_hubspot.requests) == 2


def test_a_key_left_unsure_is_looked_up_before_the_next_create(
    fake_hubspot, make_hubspot_client, contact
):
    client = make_hubspot_client(max_retries=0)
    fake_hubspot.fail_next(1, status=502, path_contains=TASKS, method="POST", apply=True)

    with pytest.raises(TransientHubSpotError) as caught:
        _task(client, contact)
    assert caught.value.ambiguous

    task_id = _task(client, contact)  # e.g. the job runs again

    assert [t["id"] for t in fake_hubspot.created("tasks")] == [task_id]
    assert [r.path for r in fake_hubspot.requests][-1] == f"{TASKS}/search"


def test_search_failure_during_the_check_is_transient_and_creates_nothing_more(
    fake_hubspot, make_hubspot_client, contact
):
    client = make_hubspot_client(max_retries=2)
    fake_hubspot.fail_next(1, status=500, path_contains=TASKS, method="POST", apply=True)
    fake_hubspot.fail_next(5, status=503, path_contains=f"{TASKS}/search")

    with pytest.raises(TransientHubSpotError):
        _task(client, contact)
    with pytest.raises(TransientHubSpotError):  # the check fails: nothing is re-sent
        _task(client, contact)

    assert len(fake_hubspot.created("tasks")) == 1


def test_create_for_a_missing_contact_is_permanent(fake_hubspot, hubspot_client):
    with pytest.raises(PermanentHubSpotError) as caught:
        _task(hubspot_client, "404404")

    assert caught.value.status == 400 and len(fake_hubspot.requests) == 1


def test_naive_due_date_is_refused(hubspot_client, contact):
    with pytest.raises(ValueError):
        hubspot_client.create_task(
            contact, subject="s", body="b", owner_id=None, due=datetime(2026, 1, 1),
            idempotency_key="k",
        )  # fmt: skip


def test_concurrent_use_from_many_threads(fake_hubspot, hubspot_client, contact):
    from concurrent.futures import ThreadPoolExecutor

    fake_hubspot.fail_next(6, status=503, path_contains=TASKS, method="POST")

    def work(i: int) -> str:
        hubspot_client.update_contact(contact, {"firstname": f"n{i}"})
        while True:
            try:
                return _task(hubspot_client, contact, key=f"k{i % 20}")
            except TransientHubSpotError as err:  # ambiguous: the outbox would try again
                assert err.ambiguous

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(work, range(40)))

    tasks = fake_hubspot.created("tasks")
    assert len(tasks) == 20 and set(ids) == {t["id"] for t in tasks}
    assert ids[:20] == ids[20:]  # the same key always maps to the same task
    assert fake_hubspot.errors == []
