"""The request path's one-pass C check (`fast_event_count`) against the full check (`parse`).

The fast check may decline anything (the full check then decides and says why), but it must
never accept a body the full check refuses, or count its events differently: that body would be
acknowledged and then fail in the worker. Hypothesis builds HubSpot-shaped events with values
at and past every bound (lengths counted in characters, not bytes; integers at the 64-bit edge;
booleans where integers belong; nested values; unknown fields).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.hubspot.payloads import PayloadError, fast_event_count, parse, validate

NOW = datetime(2026, 11, 30, tzinfo=UTC)
MAX = 2**63 - 1

_edge_ints = st.sampled_from(
    [
        0,
        1,
        -1,
        10,
        10_000,
        10_001,
        MAX,
        MAX + 1,
        -MAX,
        -MAX - 1,
        2**64,
        946_684_800_000,
        946_684_799_999,
        4_102_444_800_000,
        4_102_444_800_001,
        1_763_650_800_000,
    ]
)
_ints = st.one_of(_edge_ints, st.integers(min_value=-(2**70), max_value=2**70))
_strings = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        [
            "",
            "contact.creation",
            "é" * 64,
            "é" * 65,
            "a" * 64,
            "a" * 65,
            "x" * 255,
            "ü" * 255,
            "x" * 256,
            "12",
            "\U0001f600" * 64,
        ]
    ),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    _strings,
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([9223372036854775807.0, -9223372036854775808.0, 9.2233720368547748e18]),
    st.sampled_from([1e19, -1e19, 1.0, 0.5]),
)
_values = st.one_of(
    _scalars,
    _scalars,
    st.lists(_scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), _scalars, max_size=2),
)
_KEYS = [
    "subscriptionType",
    "eventType",
    "portalId",
    "objectId",
    "primaryObjectId",
    "occurredAt",
    "eventId",
    "subscriptionId",
    "attemptNumber",
    "propertyName",
    "propertyValue",
    "changeSource",
    "appId",
    "changeFlag",
    "sourceId",
    "objectTypeId",
    "isSensitive",
    "somethingNew",
]


def _good() -> dict[str, Any]:
    return {
        "eventId": 1,
        "subscriptionId": 12345,
        "portalId": 62515,
        "occurredAt": 1_763_650_800_000,
        "subscriptionType": "contact.creation",
        "attemptNumber": 0,
        "objectId": 123,
        "changeSource": "CRM",
        "appId": 54321,
    }


LO, HI = 946_684_800_000, 4_102_444_800_000
_IDS = [0, 1, MAX, MAX + 1, -1, True, "1", 1.0, None]
# Each field's own bounds, and values just past them.
_EDGES: dict[str, list[Any]] = {
    "subscriptionType": ["", "a" * 64, "a" * 65, "é" * 64, "é" * 65, None, 1],
    "eventType": ["contact.creation", "", "a" * 65, None, 1],
    "portalId": _IDS,
    "objectId": _IDS,
    "primaryObjectId": _IDS,
    "occurredAt": [LO - 1, LO, HI, HI + 1, 1.5e12, str(LO + 1), None],
    "eventId": _IDS,
    "subscriptionId": _IDS,
    "attemptNumber": [-1, 0, 10_000, 10_001, None, True, "3"],
    "propertyName": ["", "x" * 255, "ü" * 255, "x" * 256, "ü" * 256, None, 5],
    "changeSource": [None, "", 5, "x" * 100, ["CRM"]],
    # Scalars outside the key: floats at the 64-bit edge (2**63 - 1 is 2**63 as a float).
    "propertyValue": [MAX + 0.0, -MAX - 1.0, 9.2233720368547748e18, 1e300, [1], {"a": 1}],
    "appId": [MAX, MAX + 1, MAX + 0.0, -MAX - 1, True, "54321"],
}
_EDGE = st.sampled_from([(key, value) for key, values in _EDGES.items() for value in values])
_change = st.sampled_from(_KEYS).flatmap(lambda key: st.tuples(st.just(key), _values))
# One value at a field's bound, sometimes with one more arbitrary change or a missing field.
_event = st.builds(
    lambda edge, changes, drop: {
        k: v for k, v in {**_good(), **dict([edge, *changes])}.items() if k not in drop
    },
    _EDGE,
    st.lists(_change, max_size=1),
    st.sets(st.sampled_from(_KEYS), max_size=1),
)


def _full_count(body: bytes) -> int | None:
    try:
        return len(parse(body, received_at=NOW).events)
    except PayloadError:
        return None


@settings(max_examples=1500, deadline=None)
@given(events=st.lists(_event, max_size=4))
def test_the_fast_check_never_accepts_what_the_full_check_refuses(events: list[Any]) -> None:
    body = json.dumps(events, ensure_ascii=False).encode()
    fast = fast_event_count(body)
    if fast:
        assert _full_count(body) == fast


@pytest.mark.parametrize(
    "raw",
    [
        b'[{"subscriptionType": "contact.creation", "portalId": 1, "objectId": 1, '
        b'"occurredAt": 1763650800000, "propertyValue": "\\ud800"}]',
        b"\xef\xbb\xbf" + json.dumps([_good()]).encode(),
        json.dumps([_good()]).encode()[:-1],
        json.dumps([_good()]).encode().replace(b"123", b"9" * 30),
        json.dumps([_good()]).encode().replace(b'"CRM"', b"[" * 3000 + b"]" * 3000),
        json.dumps([{**_good(), "objectId": True}]).encode(),
        json.dumps([{**_good(), "occurredAt": 1.5e12}]).encode(),
        b"[]",
    ],
)
def test_bodies_both_checks_refuse(raw: bytes) -> None:
    assert fast_event_count(raw) == 0
    assert _full_count(raw) is None


def test_what_hubspot_sends_takes_the_fast_path() -> None:
    """Without this, a fast check that never accepts would pass the tests above."""
    samples = [
        _good(),
        {**_good(), "changeFlag": "NEW"},
        {
            "appId": 4210286,
            "eventId": 100,
            "subscriptionId": 2902227,
            "portalId": 44237313,
            "occurredAt": 1731612210994,
            "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0,
            "objectId": 123,
            "changeSource": "CRM",
            "propertyName": "message",
            "propertyValue": "sample-value",
        },
        {
            "eventId": 2145459286,
            "subscriptionId": 3849706,
            "portalId": 145883449,
            "appId": 14947547,
            "occurredAt": 1751276050977,
            "subscriptionType": "object.creation",
            "attemptNumber": 0,
            "objectId": 180584432881,
            "objectTypeId": "2-143967026",
            "changeFlag": "CREATED",
            "changeSource": "CRM_UI",
            "sourceId": "userId:75514748",
        },
    ]
    body = json.dumps(samples).encode()
    assert fast_event_count(body) == 4
    assert validate(body, received_at=NOW).size == 4
    assert _full_count(body) == 4
