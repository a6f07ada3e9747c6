"""Signed-body fuzzing of POST /webhooks/hubspot (issue 9): whatever a signed body holds, the
endpoint answers 200 or 400 (503 only for the database), never another 5xx; every signed body
ends up stored as a batch or kept as a dead letter; and the worker splits every stored batch.

Bodies mix HubSpot's shape with hostile values (huge and negative numbers, NaN, long strings,
nesting, wrong types) and raw texts that break parsers (deep nesting, 5,000-digit integers,
invalid UTF-8). The example count is bounded so the test runs in seconds per engine.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.db.schema import dead_letters, webhook_batches
from sla_bot.splitter import split_pending
from tests.signing import signed_headers

URL = "/webhooks/hubspot"

_big_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]),
)
_text = st.one_of(st.text(max_size=20), st.text(min_size=60, max_size=300))
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    _big_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(good, good, good, _json)


_event = st.fixed_dictionaries(
    {
        "portalId": _field(st.integers(min_value=1, max_value=10**9)),
        "objectId": _field(st.integers(min_value=1, max_value=2**63 - 1)),
        "occurredAt": _field(st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000)),
        "subscriptionType": _field(st.sampled_from(["contact.creation", "contact.propertyChange"])),
    },
    optional={
        "eventId": _field(st.integers(min_value=0, max_value=2**63 - 1)),
        "subscriptionId": _field(st.integers(min_value=0, max_value=2**63 - 1)),
        "attemptNumber": _field(st.integers(min_value=0, max_value=10)),
        "propertyName": _field(st.sampled_from(["email", "hubspot_owner_id", ""])),
        "propertyValue": _json,
        "changeSource": _field(st.sampled_from(["CRM", "CRM_UI", "API"])),
        "appId": _json,
    },
)
_workflow = st.fixed_dictionaries(
    {"vid": _field(st.integers(min_value=1, max_value=10**9))},
    optional={
        "portal-id": _field(st.integers(min_value=1, max_value=10**9)),
        "properties": st.dictionaries(st.sampled_from(["lastmodifieddate", "createdate"]), _json),
    },
)
_raw = st.sampled_from(
    [
        b"[" * 5000 + b"]" * 5000,
        b'[{"objectId": ' + b"9" * 5001 + b"}]",
        b'{"vid": 1, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b"\xff\xfe[]",
        b'[{"portalId": 1',
        b"",
        b"null",
        b"[1e999]",
    ]
)
_bodies = st.one_of(
    st.lists(_event, min_size=1, max_size=4).map(lambda v: json.dumps(v).encode()),
    _workflow.map(lambda v: json.dumps(v).encode()),
    _json.map(lambda v: json.dumps(v).encode()),
    _raw,
)


def _kept(engine: Engine, table: Any, body: bytes) -> bool:
    digest = hashlib.sha256(body).hexdigest()
    with engine.connect() as conn:
        return (
            conn.execute(select(table.c.id).where(table.c.body_sha256 == digest)).first()
            is not None
        )


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=_bodies)
def test_every_signed_body_is_stored_or_dead_lettered(
    client: Any, engine: Engine, clock: FrozenClock, body: bytes
) -> None:
    response = client.post(URL, data=body, headers=signed_headers(body, now=clock.now()))
    assert response.status_code in (200, 400, 503), (response.status_code, body[:200])
    assert response.is_json
    if response.status_code == 200:
        assert _kept(engine, webhook_batches, body)
    elif response.status_code == 400:
        assert _kept(engine, dead_letters, body)
    assert split_pending(engine, now=clock.now()).failed == 0
