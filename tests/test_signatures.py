"""HubSpot signature verification against published vectors and the failure cases.

The vectors (tests/vectors/) are public test data from HubSpot's documentation and SDK tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.datastructures import Headers

from integrations.hubspot.signatures import decode_v3_uri, sign_v3, verify

VECTORS = json.loads(
    (Path(__file__).resolve().parent / "vectors/hubspot-signatures.json").read_text()
)
SECRET = VECTORS["client_secret"]


def _headers(vec: dict[str, str]) -> Headers:
    if vec["version"] == "v3":
        return Headers(
            {
                "X-HubSpot-Signature-v3": vec["signature"],
                "X-HubSpot-Request-Timestamp": vec["timestamp"],
            }
        )
    return Headers(
        {"X-HubSpot-Signature": vec["signature"], "X-HubSpot-Signature-Version": vec["version"]}
    )


def _now_for(vec: dict[str, str]) -> datetime:
    if vec["timestamp"]:
        return datetime.fromtimestamp(int(vec["timestamp"]) / 1000, UTC) + timedelta(seconds=30)
    return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("vec", VECTORS["vectors"], ids=lambda v: f"{v['id']}-{v['version']}")
def test_shared_vector_verifies(vec: dict[str, str]) -> None:
    verdict = verify(
        headers=_headers(vec),
        method=vec["method"],
        uri=vec["uri"],
        body=vec["body"].encode(),
        secret=SECRET,
        now=_now_for(vec),
    )
    assert verdict.ok, verdict.reason
    assert verdict.version == vec["version"]


@pytest.mark.parametrize("vec", VECTORS["vectors"], ids=lambda v: v["id"])
def test_shared_vector_with_wrong_secret_fails(vec: dict[str, str]) -> None:
    verdict = verify(
        headers=_headers(vec),
        method=vec["method"],
        uri=vec["uri"],
        body=vec["body"].encode(),
        secret=SECRET + "x",
        now=_now_for(vec),
    )
    assert not verdict.ok
    assert verdict.reason == "signature does not match"


@pytest.mark.parametrize("vec", VECTORS["vectors"], ids=lambda v: v["id"])
def test_shared_vector_with_tampered_body_fails(vec: dict[str, str]) -> None:
    verdict = verify(
        headers=_headers(vec),
        method=vec["method"],
        uri=vec["uri"],
        body=vec["body"].encode() + b" ",
        secret=SECRET,
        now=_now_for(vec),
    )
    assert not verdict.ok


def test_v3_vector_is_stale_at_real_time() -> None:
    vec = next(v for v in VECTORS["vectors"] if v["version"] == "v3")
    verdict = verify(
        headers=_headers(vec),
        method="POST",
        uri=vec["uri"],
        body=vec["body"].encode(),
        secret=SECRET,
        now=datetime.now(UTC),
    )
    assert not verdict.ok
    assert "older than 5 minutes" in verdict.reason


@pytest.mark.parametrize(
    ("skew", "ok"),
    [
        (timedelta(minutes=-5), True),
        (timedelta(minutes=-5, seconds=-1), False),
        (timedelta(minutes=5), True),
        (timedelta(minutes=5, seconds=1), False),
    ],
)
def test_v3_window_is_five_minutes_both_ways(skew: timedelta, ok: bool) -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    ts = str(int((now + skew).timestamp() * 1000))
    body = b"[]"
    sig = sign_v3("s", "POST", "https://x.test/h", body, ts)
    headers = Headers({"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})
    verdict = verify(
        headers=headers, method="POST", uri="https://x.test/h", body=body, secret="s", now=now
    )
    assert verdict.ok is ok


@pytest.mark.parametrize("ts", [None, "abc", "-5", "1" * 30])
def test_v3_bad_timestamp_is_refused_not_raised(ts: str | None) -> None:
    headers = Headers({"X-HubSpot-Signature-v3": "AAAA"})
    if ts is not None:
        headers["X-HubSpot-Request-Timestamp"] = ts
    verdict = verify(
        headers=headers,
        method="POST",
        uri="https://x.test/h",
        body=b"[]",
        secret="s",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert not verdict.ok
    assert "X-HubSpot-Request-Timestamp" in verdict.reason


def test_missing_headers_are_refused() -> None:
    verdict = verify(
        headers=Headers(),
        method="POST",
        uri="u",
        body=b"[]",
        secret="s",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert (verdict.ok, verdict.reason) == (False, "missing signature header")


def test_version_not_accepted_is_refused() -> None:
    vec = VECTORS["vectors"][0]  # v1
    verdict = verify(
        headers=_headers(vec),
        method="POST",
        uri=vec["uri"],
        body=vec["body"].encode(),
        secret=SECRET,
        now=_now_for(vec),
        accept={"v3"},
    )
    assert not verdict.ok
    assert "not accepted" in verdict.reason


def test_v3_uri_decodes_exactly_hubspots_table() -> None:
    raw = "https://h.test/w?a=%2Fb%3fc%40d%21e%24f%27g%2Ah%2Ci%3Bj%28k%29&sp=%20&amp=%26&u=%C3%A9"
    assert decode_v3_uri(raw) == "https://h.test/w?a=/b?c@d!e$f'g*h,i;j(k)&sp=%20&amp=%26&u=%C3%A9"


def test_v3_signature_over_encoded_uri_matches_decoded_form() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    ts = str(int(now.timestamp() * 1000))
    decoded_sig = sign_v3("s", "POST", "https://h.test/w?to=a@b", b"{}", ts)
    headers = Headers({"X-HubSpot-Signature-v3": decoded_sig, "X-HubSpot-Request-Timestamp": ts})
    verdict = verify(
        headers=headers,
        method="POST",
        uri="https://h.test/w?to=a%40b",
        body=b"{}",
        secret="s",
        now=now,
    )
    assert verdict.ok
