"""Error classification and retry delays, without the network."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
import urllib3.exceptions

from integrations.hubspot.errors import (
    PermanentHubSpotError,
    TransientHubSpotError,
    classify,
    from_http_response,
    parse_retry_after,
)
from integrations.hubspot.retry import RetryPolicy


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("soon", None),
     ("Fri, 20 Nov 2026 15:00:30 GMT", 30.0)],
)  # fmt: skip
def test_parse_retry_after(value, expected):
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    ("status", "transient", "ambiguous"),
    [(400, False, False), (401, False, False), (403, False, False), (404, False, False),
     (409, False, False), (408, True, False), (429, True, False), (500, True, True),
     (502, True, True), (503, True, True), (504, True, True)],
)  # fmt: skip
def test_http_status_classification(status, transient, ambiguous):
    err = from_http_response(status, b"", {}, operation="op")

    assert isinstance(err, TransientHubSpotError if transient else PermanentHubSpotError)
    assert err.transient is transient and err.ambiguous is ambiguous and err.status == status


def test_hubspot_error_fields_are_kept():
    body = (
        b'{"status":"error","message":"Property values were not valid","correlationId":"abc",'
        b'"category":"VALIDATION_ERROR"}'
    )

    err = from_http_response(400, body, {"Retry-After": "2"}, operation="update contact")

    assert (err.message, err.category, err.correlation_id) == (
        "Property values were not valid",
        "VALIDATION_ERROR",
        "abc",
    )
    assert err.retry_after == 2.0
    assert str(err) == (
        "update contact: HTTP 400 VALIDATION_ERROR - Property values were not valid "
        "(correlationId=abc)"
    )


def test_non_json_error_body():
    err = from_http_response(502, b"<html>Bad gateway</html>", {})

    assert err.transient and err.message == "<html>Bad gateway</html>"


def test_network_exception_classification():
    read = classify(urllib3.exceptions.ReadTimeoutError(None, "/x", "timed out"))
    connect = classify(urllib3.exceptions.NewConnectionError(None, "refused"))
    reset = classify(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    )
    wrapped = classify(urllib3.exceptions.MaxRetryError(None, "/x", reason=ConnectionResetError()))
    other = classify(KeyError("results"))

    assert read.transient and read.ambiguous
    assert connect.transient and not connect.ambiguous  # nothing was sent
    assert reset.transient and reset.ambiguous
    assert wrapped.transient and wrapped.ambiguous
    assert isinstance(other, PermanentHubSpotError)


def test_full_jitter_bounds():
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=4.0)
    rng = random.Random(3)

    for retry in range(10):
        delays = [policy.backoff(retry, rng) for _ in range(50)]
        assert all(0 <= d <= min(4.0, 0.5 * 2**retry) for d in delays)
    assert max(policy.backoff(9, rng) for _ in range(200)) > 3.0  # capped, not collapsed
