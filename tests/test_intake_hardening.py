"""Issue 9, items 3-5: replays, hostile JSON and long values at the webhook door.

Real SQLite and PostgreSQL through Flask's test client; every refused body is looked for in
both tables (nothing stored twice, nothing signed lost).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from sla_bot.clock import FrozenClock
from sla_bot.db.schema import dead_letters, webhook_batches, webhook_events
from sla_bot.logs import configure, db_error
from sla_bot.services import Services
from sla_bot.splitter import split_pending
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.signing import batch, event, signed_headers

URL = "/webhooks/hubspot"


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _hubspot_headers(body: bytes, clock: FrozenClock) -> dict[str, str]:
    """What HubSpot sends an OAuth app: the v1 signature and the timestamped v3 one."""
    return signed_headers(body, now=clock.now(), version="v1") | signed_headers(
        body, now=clock.now(), version="v3"
    )


def _without_v3(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in headers.items()
        if k not in ("X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp")
    }


def _dead_letter_kept(engine: Engine, body: bytes) -> bool:
    digest = hashlib.sha256(body).hexdigest()
    with engine.connect() as conn:
        found = conn.execute(
            select(dead_letters.c.id).where(dead_letters.c.body_sha256 == digest)
        ).first()
    return found is not None


# --- item 3: no downgrade replay; raw batches deduplicated --------------------------------


def test_a_week_old_request_with_v3_stripped_is_refused(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(i) for i in range(3)])
    headers = _hubspot_headers(body, clock)
    assert client.post(URL, data=body, headers=headers).status_code == 200
    clock.advance(timedelta(days=7))
    replay = client.post(URL, data=body, headers=_without_v3(headers))
    assert replay.status_code == 401
    assert "v3" in replay.json["error"]
    other = batch([event(9)])  # any array the app signs, not only the captured one
    v1_only = signed_headers(other, now=clock.now(), version="v1")
    assert client.post(URL, data=other, headers=v1_only).status_code == 401
    assert _count(engine, webhook_batches) == 1
    assert _count(engine, dead_letters) == 0


def test_the_v3_signer_is_remembered_across_processes(
    services: Services, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(1)])
    first = create_app(services=services).test_client()
    assert first.post(URL, data=body, headers=_hubspot_headers(body, clock)).status_code == 200
    # Another gunicorn worker (its own cache) on the same database.
    other = Services(settings=services.settings, engine=engine, clock=clock)
    second = create_app(services=other).test_client()
    replay = batch([event(2)])
    v1_only = signed_headers(replay, now=clock.now(), version="v1")
    assert second.post(URL, data=replay, headers=v1_only).status_code == 401


def test_require_v3_setting_refuses_v1_arrays_from_the_first_request(
    db_url: str, engine: Engine, clock: FrozenClock
) -> None:
    settings = make_settings(DATABASE_URL=db_url, SLA_BOT_WEBHOOK_REQUIRE_V3="true")
    web = create_app(services=Services(settings=settings, engine=engine, clock=clock))
    body = batch([event(1)])
    v1_only = signed_headers(body, now=clock.now(), version="v1")
    assert web.test_client().post(URL, data=body, headers=v1_only).status_code == 401
    assert _count(engine, webhook_batches) == 0


def test_workflow_bodies_signed_v2_still_pass_once_v3_was_seen(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    array = batch([event(1)])
    assert client.post(URL, data=array, headers=_hubspot_headers(array, clock)).status_code == 200
    workflow = json.dumps({"vid": 901, "portal-id": 62515}).encode()
    headers = signed_headers(workflow, now=clock.now(), version="v2")
    assert client.post(URL, data=workflow, headers=headers).status_code == 200
    assert _count(engine, webhook_batches) == 2


def test_a_replayed_body_stores_nothing_new(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(i) for i in range(3)])
    for _ in range(3):  # within v3's five minutes, the signature holds each time
        response = client.post(URL, data=body, headers=_hubspot_headers(body, clock))
        assert response.status_code == 200
        clock.advance(timedelta(seconds=30))
    assert _count(engine, webhook_batches) == 1
    assert split_pending(engine, now=clock.now()).new == 3


# --- item 4: hostile JSON and impossible values --------------------------------------------


def _assert_dead_lettered(client: Any, engine: Engine, clock: FrozenClock, body: bytes) -> Any:
    response = client.post(URL, data=body, headers=signed_headers(body, now=clock.now()))
    assert response.status_code == 400, response.data[:200]
    assert response.is_json
    assert _dead_letter_kept(engine, body)
    assert _count(engine, webhook_batches) == 0
    return response


def test_json_nested_5000_deep_is_a_400_and_a_dead_letter(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    item = event(1)
    item["propertyValue"] = "@"
    body = batch([item]).replace(b'"@"', b"[" * 5000 + b"]" * 5000)
    response = _assert_dead_lettered(client, engine, clock, body)
    assert "deeper" in response.json["details"][0]


def test_an_integer_with_5001_digits_is_a_400_and_a_dead_letter(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(1, propertyValue="@")]).replace(b'"@"', b"9" * 5001)
    _assert_dead_lettered(client, engine, clock, body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("objectId", 0),
        ("portalId", 0),
        ("occurredAt", 0),
        ("occurredAt", 1_000),
        ("propertyName", 42),
        ("propertyName", "p" * 256),
        ("subscriptionType", "contact." + "x" * 60),
        ("attemptNumber", 2**40),  # the column is a 32-bit INTEGER
    ],
)
def test_impossible_values_are_refused_not_stored(
    client: Any, engine: Engine, clock: FrozenClock, field: str, value: Any
) -> None:
    body = batch([event(1, **{field: value})])
    response = _assert_dead_lettered(client, engine, clock, body)
    assert field in response.json["details"][0]


def test_a_workflow_body_with_contact_id_zero_is_refused(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = json.dumps({"vid": 0, "portal-id": 62515}).encode()
    headers = signed_headers(body, now=clock.now(), version="v2")
    assert client.post(URL, data=body, headers=headers).status_code == 400
    assert _dead_letter_kept(engine, body)


# --- item 5: long values and what the logs say ---------------------------------------------


def _accept_and_split(
    client: Any, engine: Engine, clock: FrozenClock, body: bytes, *, new: int
) -> None:
    """The signed body is acknowledged, and its `new` events split without a failure."""
    response = client.post(URL, data=body, headers=signed_headers(body, now=clock.now()))
    assert response.status_code == 200
    result = split_pending(engine, now=clock.now())
    assert (result.new, result.failed) == (new, 0)


def test_a_long_change_source_keeps_the_batch(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    body = batch([event(1, changeSource="X" * 80), event(2)])
    _accept_and_split(client, engine, clock, body, new=2)
    with engine.connect() as conn:
        sources = conn.execute(
            select(webhook_events.c.change_source).order_by(webhook_events.c.batch_index)
        ).scalars()
        assert list(sources) == ["X" * 64, "CRM"]  # the raw body keeps the whole value
    assert _count(engine, dead_letters) == 0


def test_nul_characters_in_event_text_do_not_stop_the_split(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    """PostgreSQL text cannot hold NUL; a signed body may still carry "\u0000" (the fuzz test
    found it). The rows get U+FFFD, on both databases; the raw body keeps the NUL."""
    body = batch(
        [
            event(
                1, kind="contact.propertyChange", propertyName="a\u0000b", propertyValue="x\u0000"
            ),
            event(2, changeSource="CRM\u0000"),
        ]
    )
    _accept_and_split(client, engine, clock, body, new=2)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                webhook_events.c.property_name,
                webhook_events.c.property_value,
                webhook_events.c.change_source,
            ).order_by(webhook_events.c.batch_index)
        ).all()
    assert [tuple(r) for r in rows] == [("a\ufffdb", "x\ufffd", "CRM"), ("", None, "CRM\ufffd")]
    assert _count(engine, dead_letters) == 0


def test_a_refusal_quoting_a_nul_is_still_dead_lettered(
    client: Any, engine: Engine, clock: FrozenClock
) -> None:
    """The 400's reason names where the body is wrong, by its JSON keys, which may carry NUL:
    the dead letter is still kept (its reason with U+FFFD), on PostgreSQL too."""
    body = b'[{"n\\u0000": 123456789012345678901234567890}]'
    response = client.post(URL, data=body, headers=signed_headers(body, now=clock.now()))
    assert response.status_code == 400
    with engine.connect() as conn:
        reason, kept = conn.execute(select(dead_letters.c.reason, dead_letters.c.body)).one()
    assert "n\ufffd" in reason and "64-bit" in reason and kept == body


def _refuse_on_insert(engine: Engine, value: str) -> None:
    """A constraint the database enforces and intake does not know: any refusal will do."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "ALTER TABLE webhook_events ADD CONSTRAINT no_secret "
                    f"CHECK (property_value IS NULL OR property_value <> '{value}')"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER no_secret BEFORE INSERT ON webhook_events "
                    f"WHEN NEW.property_value = '{value}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )


def test_database_errors_are_logged_without_crm_values(
    client: Any, engine: Engine, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    email = "ada.lovelace@example.com"
    _refuse_on_insert(engine, email)
    body = batch([event(1, propertyName="email", propertyValue=email)])
    assert (
        client.post(URL, data=body, headers=signed_headers(body, now=clock.now())).status_code
        == 200
    )
    with caplog.at_level(logging.INFO):
        result = split_pending(engine, now=clock.now())
    assert result.failed == 1
    assert "could not be stored" in caplog.text
    assert email not in caplog.text
    assert "62515" not in caplog.text  # no parameters at all, not even ids


def test_engines_hide_sql_parameters(engine: Engine) -> None:
    email = "grace.hopper@example.com"
    with pytest.raises(IntegrityError) as info, engine.begin() as conn:
        conn.execute(
            webhook_events.insert().values(
                portal_id=1, object_id=None, property_value=email, batch_id=1
            )
        )
    assert email not in str(info.value).split("\nDETAIL")[0]
    assert "parameters hidden" in str(info.value)
    assert email not in db_error(info.value)


def test_a_batch_the_database_refuses_is_a_dead_letter_not_a_500(
    client: Any, engine: Engine, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "ALTER TABLE webhook_batches ADD CONSTRAINT no_portal "
                    "CHECK (portal_hint IS NULL OR portal_hint <> 424242)"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER no_portal BEFORE INSERT ON webhook_batches "
                    "WHEN NEW.portal_hint = 424242 BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    body = json.dumps({"vid": 901, "properties": {"email": "ada@example.com"}}).encode()
    url = "http://localhost/webhooks/hubspot?portalId=424242"
    headers = signed_headers(body, now=clock.now(), version="v2", url=url)
    response = client.post(URL + "?portalId=424242", data=body, headers=headers)
    assert response.status_code == 400
    assert _dead_letter_kept(engine, body)
    assert "ada@example.com" not in caplog.text
    # The writer's connection survived the error: the next request is stored.
    body = batch([event(1)])
    assert (
        client.post(URL, data=body, headers=signed_headers(body, now=clock.now())).status_code
        == 200
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logged_database_exceptions_carry_no_row_values(
    engine: Engine, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """Every `log.exception` site: the handler `configure` installs scrubs database errors."""
    email = "katherine.johnson@example.com"
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure(fmt)
    try:
        with engine.begin() as conn:
            conn.execute(
                webhook_events.insert().values(
                    portal_id=1, object_id=None, property_value=email, batch_id=1
                )
            )
    except IntegrityError:
        logging.getLogger("sla_bot.test").exception("applying events failed")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "applying events failed" in err
    assert "Traceback" in err and "null" in err.lower()  # where, and what kind
    assert email not in err
