"""POST /webhooks/hubspot through Flask's test client on real SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.db.schema import dead_letters, webhook_batches, webhook_events
from sla_bot.services import Services
from sla_bot.splitter import split_pending
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.signing import SECRET, batch, event, signed_headers

URL = "/webhooks/hubspot"


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _post(client: Any, body: bytes, clock: FrozenClock, **kw: Any) -> Any:
    return client.post(URL, data=body, headers=signed_headers(body, now=clock.now(), **kw))


def test_signed_batch_is_stored_and_acknowledged(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(i) for i in range(3)])
    response = _post(client, body, clock)
    assert response.status_code == 200
    assert response.json == {"received": 3}
    with engine.connect() as conn:
        row = conn.execute(select(webhook_batches)).one()
    assert row.body == body
    assert row.signature_version == "v3"
    assert row.processed_at is None


def test_every_signature_version_is_accepted(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    for i, version in enumerate(("v1", "v2", "v3")):
        response = _post(client, batch([event(i)]), clock, version=version)
        assert response.status_code == 200, (version, response.json)
    assert _count(engine, webhook_batches) == 3


def _assert_refused(response: Any, engine: Engine, status: int, text: str) -> None:
    assert response.status_code == status
    assert text in response.json["error"]
    assert _count(engine, webhook_batches) == 0
    assert _count(engine, dead_letters) == 0


def test_tampered_body_gets_401_and_nothing_is_stored(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(1)])
    headers = signed_headers(body, now=clock.now())
    response = client.post(URL, data=body.replace(b"5001", b"5002"), headers=headers)
    _assert_refused(response, engine, 401, "does not match")


def test_wrong_secret_gets_401(client: Any, engine: Engine, clock: FrozenClock) -> None:
    response = _post(client, batch([event(1)]), clock, secret=SECRET + "x")
    _assert_refused(response, engine, 401, "does not match")


def test_stale_timestamp_gets_401(client: Any, engine: Engine, clock: FrozenClock) -> None:
    body = batch([event(1)])
    headers = signed_headers(body, now=clock.now() - timedelta(minutes=6))
    _assert_refused(client.post(URL, data=body, headers=headers), engine, 401, "older than")


def test_future_timestamp_gets_401(client: Any, engine: Engine, clock: FrozenClock) -> None:
    body = batch([event(1)])
    headers = signed_headers(body, now=clock.now() + timedelta(minutes=6))
    _assert_refused(client.post(URL, data=body, headers=headers), engine, 401, "future")


def test_missing_signature_gets_401(client: Any, engine: Engine) -> None:
    response = client.post(
        URL, data=batch([event(1)]), headers={"Content-Type": "application/json"}
    )
    _assert_refused(response, engine, 401, "missing signature")


def test_body_over_limit_gets_413_without_storing(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = b"[" + b" " * (1024 * 1024) + b"]"
    _assert_refused(_post(client, body, clock), engine, 413, "larger than")


def test_chunked_body_over_limit_gets_413(client: Any, engine: Engine) -> None:
    body = io.BytesIO(b"[" + b" " * 1_400_000 + b"]")
    response = client.post(
        URL,
        input_stream=body,
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    _assert_refused(response, engine, 413, "larger than")
    assert body.tell() <= 1024 * 1024 + 1  # stopped reading just past the limit


def test_a_host_header_with_the_default_port_verifies(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    """Proxies may send `Host: name:80`; HubSpot signed the URL without the default port."""
    body = batch([event(1)])
    headers = signed_headers(body, now=clock.now())  # signed for http://localhost/webhooks/...
    response = client.post(URL, data=body, headers={**headers, "Host": "localhost:80"})
    assert response.status_code == 200
    assert _count(engine, webhook_batches) == 1


def test_other_methods_get_405_naming_post(client: Any, engine: Engine) -> None:
    response = client.get(URL)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.json == {"error": "method not allowed"}
    assert client.get("/webhooks/hubspot/").status_code == 404  # other paths: Flask's
    assert _count(engine, webhook_batches) == 0


def test_a_body_shorter_than_its_content_length_is_refused(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    """The client went away mid-body: nothing half-read is verified or stored."""
    body = batch([event(1)])
    headers = signed_headers(body, now=clock.now())
    response = client.post(
        URL,
        input_stream=io.BytesIO(body[:-10]),
        headers=headers,
        environ_overrides={"CONTENT_LENGTH": str(len(body))},
    )
    _assert_refused(response, engine, 400, "shorter than its Content-Length")


def test_wrong_content_type_gets_415(client: Any, engine: Engine, clock: FrozenClock) -> None:
    body = batch([event(1)])
    headers = signed_headers(body, now=clock.now())
    headers["Content-Type"] = "text/plain"
    _assert_refused(client.post(URL, data=body, headers=headers), engine, 415, "application/json")


def test_signed_malformed_json_is_dead_lettered_with_400(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = b'[{"portalId": 1,'
    response = _post(client, body, clock)
    assert response.status_code == 400
    assert response.json["error"] == "malformed webhook payload"
    assert "not valid JSON" in response.json["details"][0]
    assert _count(engine, webhook_batches) == 0
    with engine.connect() as conn:
        row = conn.execute(select(dead_letters)).one()
    assert row.body == body and row.signature_version == "v3"
    _post(client, body, clock)  # HubSpot retries: one row, counted twice
    with engine.connect() as conn:
        assert conn.execute(select(dead_letters.c.times_seen)).scalar_one() == 2


def test_events_missing_fields_are_named(client: Any, engine: Engine, clock: FrozenClock) -> None:
    bad = event(2)
    del bad["portalId"]
    response = _post(client, batch([event(1), bad, "x"]), clock)  # type: ignore[list-item]
    assert response.status_code == 400
    assert response.json["details"] == [
        "event 1: missing or invalid portalId",
        "event 2: expected an object, got str",
    ]
    assert _count(engine, dead_letters) == 1


def test_non_array_json_is_explained(client: Any, clock: FrozenClock) -> None:
    response = _post(client, b'"hello"', clock)
    assert response.status_code == 400
    assert "expected a JSON array of events or a workflow object" in response.json["details"][0]


def test_unknown_subscription_type_is_stored_not_rejected(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(1, kind="conversation.newMessage")])
    assert _post(client, body, clock).status_code == 200
    split_pending(engine, now=clock.now())
    with engine.connect() as conn:
        assert conn.execute(select(webhook_events.c.subscription_type)).scalar_one() == (
            "conversation.newMessage"
        )


def test_event_type_key_is_accepted_as_fallback(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    item = event(1)
    item["eventType"] = item.pop("subscriptionType")
    assert _post(client, batch([item]), clock).status_code == 200
    split_pending(engine, now=clock.now())
    with engine.connect() as conn:
        assert conn.execute(select(webhook_events.c.subscription_type)).scalar_one() == (
            "contact.creation"
        )


def test_workflow_payload_with_v2_signature_becomes_one_event(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    payload = {
        "vid": 901,
        "portal-id": 62515,
        "properties": {
            "email": {"value": "ada@example.com", "versions": []},
            "lastmodifieddate": {"value": "1763650800123"},
        },
    }
    body = json.dumps(payload).encode()
    assert _post(client, body, clock, version="v2").status_code == 200
    assert _post(client, body, clock, version="v2").status_code == 200  # a workflow retry
    assert _count(engine, webhook_batches) == 1  # the same body is stored once
    result = split_pending(engine, now=clock.now())
    assert (result.new, result.duplicates) == (1, 0)
    with engine.connect() as conn:
        row = conn.execute(select(webhook_events)).one()
    assert (row.portal_id, row.object_id, row.subscription_type) == (62515, 901, "workflow.contact")
    assert row.occurred_at_ms == 1763650800123


def test_workflow_payload_without_portal_uses_query_parameter(
    services: Services, engine: Engine, clock: FrozenClock
) -> None:
    client = create_app(services=services).test_client()
    body = json.dumps({"objectId": 77, "properties": {"email": "x@example.com"}}).encode()
    url = "http://localhost/webhooks/hubspot?portalId=4242"
    headers = signed_headers(body, now=clock.now(), version="v2", url=url)
    assert client.post(url, data=body, headers=headers).status_code == 200
    split_pending(engine, now=clock.now())
    with engine.connect() as conn:
        assert conn.execute(select(webhook_events.c.portal_id)).scalar_one() == 4242


def test_batch_with_20_repeats_yields_80_new_events(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    first = [event(i) for i in range(20)]
    assert _post(client, batch(first), clock).status_code == 200
    split_pending(engine, now=clock.now())
    repeats = [dict(e, attemptNumber=1) for e in first]  # redelivery: same key, new attempt
    mixed = repeats + [event(i) for i in range(20, 100)]
    response = _post(client, batch(mixed), clock)
    assert response.status_code == 200
    assert response.json == {"received": 100}
    result = split_pending(engine, now=clock.now())
    assert (result.events, result.new, result.duplicates) == (100, 80, 20)
    assert _count(engine, webhook_events) == 100
    with engine.connect() as conn:
        stats = conn.execute(
            select(webhook_batches.c.events_new, webhook_batches.c.events_duplicate)
            .order_by(webhook_batches.c.id.desc())
            .limit(1)
        ).one()
    assert tuple(stats) == (80, 20)


def test_same_event_id_with_other_object_is_not_a_duplicate(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    # HubSpot's test tool sends eventId 100 for different events: eventId alone is not a key.
    body = batch([event(1, eventId=100, object_id=1), event(1, eventId=100, object_id=2)])
    assert _post(client, body, clock).status_code == 200
    assert split_pending(engine, now=clock.now()).new == 2


def test_without_secret_webhooks_get_503(engine: Engine, clock: FrozenClock, db_url: str) -> None:
    settings = make_settings(DATABASE_URL=db_url, HUBSPOT_CLIENT_SECRET="")
    settings = settings.model_copy(update={"hubspot_client_secret": None})
    client = create_app(services=Services(settings, engine, clock)).test_client()
    response = client.post(
        URL, data=batch([event(1)]), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 503
    assert "HUBSPOT_CLIENT_SECRET" in response.json["error"]
    assert _count(engine, webhook_batches) == 0


def test_insecure_flag_accepts_unsigned(engine: Engine, clock: FrozenClock, db_url: str) -> None:
    settings = make_settings(DATABASE_URL=db_url, SLA_BOT_INSECURE_ALLOW_UNSIGNED="true")
    settings = settings.model_copy(update={"hubspot_client_secret": None})
    client = create_app(services=Services(settings, engine, clock)).test_client()
    response = client.post(
        URL, data=batch([event(1)]), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(webhook_batches.c.signature_version)).scalar_one() == "none"


def test_public_url_is_what_gets_verified(engine: Engine, clock: FrozenClock, db_url: str) -> None:
    public = "https://sla.example.com/webhooks/hubspot"
    settings = make_settings(DATABASE_URL=db_url, SLA_BOT_PUBLIC_URL=public)
    client = create_app(services=Services(settings, engine, clock)).test_client()
    body = batch([event(1)])
    ok = client.post(URL, data=body, headers=signed_headers(body, now=clock.now(), url=public))
    internal = client.post(URL, data=body, headers=signed_headers(body, now=clock.now()))
    assert (ok.status_code, internal.status_code) == (200, 401)
