"""HubSpot webhook request signatures (v1, v2, v3), verified with an explicit `now`.

We do not use `hubspot.utils.signature.Signature.is_valid`: it defaults to v2, raises instead of
returning on bad timestamps, never rejects future timestamps and checks at one-second
granularity. The algorithms are small and documented; the shared test vectors pin them.

- v1: hex(sha256(secret + body))
- v2: hex(sha256(secret + method + uri + body))
- v3: base64(hmac_sha256(secret, method + decoded_uri + body + timestamp_ms)), and the
  timestamp must be within 5 minutes of now, in either direction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

MAX_SKEW_MS = 5 * 60 * 1000

# HubSpot's table: in the v3 request URI these escapes are decoded, and only these.
_V3_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def decode_v3_uri(uri: str) -> str:
    """Decode exactly HubSpot's 12 listed escapes (case-insensitive hex), nothing else."""
    if "%" not in uri:
        return uri
    out = []
    i = 0
    while i < len(uri):
        chunk = uri[i : i + 3].upper()
        if uri[i] == "%" and chunk in _V3_DECODE:
            out.append(_V3_DECODE[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def sign_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str) -> str:
    msg = b"".join(((method + decode_v3_uri(uri)).encode(), body, timestamp_ms.encode()))
    # hmac.digest: one call into OpenSSL, several times cheaper than an hmac.HMAC object.
    return base64.b64encode(hmac.digest(secret.encode(), msg, "sha256")).decode()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    version: str  # v1 | v2 | v3 | none
    reason: str  # why it failed, safe to return to the caller; "" when ok
    secret_index: int = -1  # which candidate secret signed it (when ok)


def _match(expected: Sequence[str], given: str) -> int:
    """Index of the candidate equal to `given`, comparing with every one (constant time each)."""
    found = -1
    for i, candidate in enumerate(expected):
        if hmac.compare_digest(candidate.encode(), given.encode()) and found < 0:
            found = i
    return found


def verify(
    *,
    headers: Mapping[str, str],
    method: str,
    uri: str,
    body: bytes,
    secret: str | Sequence[str],
    now: datetime,
    accept: Collection[str] = ("v3", "v2", "v1"),
) -> Verdict:
    """Check whichever signature the request carries, preferring v3 when present.

    `headers` must be case-insensitive (Werkzeug's are). `uri` is the full URL HubSpot called,
    as registered (scheme, host, path and query string), not decoded. `secret` may be several
    candidates (the app's, each private app's): the body names a portal, but nothing in it is
    trusted before a signature holds, so every candidate is tried and `secret_index` says
    which one signed.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    v3 = headers.get("X-HubSpot-Signature-v3")
    if v3 is not None and "v3" in accept:
        ts = headers.get("X-HubSpot-Request-Timestamp")
        if ts is None:
            return Verdict(False, "v3", "missing X-HubSpot-Request-Timestamp")
        if not (ts.isascii() and ts.isdigit()) or len(ts) > 16:
            return Verdict(False, "v3", "X-HubSpot-Request-Timestamp is not epoch milliseconds")
        skew = int(now.timestamp() * 1000) - int(ts)
        if skew > MAX_SKEW_MS:
            return Verdict(False, "v3", "stale signature: timestamp older than 5 minutes")
        if skew < -MAX_SKEW_MS:
            return Verdict(False, "v3", "signature timestamp more than 5 minutes in the future")
        found = _match([sign_v3(k, method, uri, body, ts) for k in secrets], v3)
        if found >= 0:
            return Verdict(True, "v3", "", found)
        return Verdict(False, "v3", "signature does not match")

    sig = headers.get("X-HubSpot-Signature")
    if sig is None:
        return Verdict(False, "none", "missing signature header")
    version = (headers.get("X-HubSpot-Signature-Version") or "v1").strip().lower()
    if version not in ("v1", "v2") or version not in accept:
        return Verdict(False, version[:8], f"signature version {version[:8]!r} not accepted")
    expected = [
        sign_v1(k, body) if version == "v1" else sign_v2(k, method, uri, body) for k in secrets
    ]
    found = _match(expected, sig.strip().lower())
    if found >= 0:
        return Verdict(True, version, "", found)
    return Verdict(False, version, "signature does not match")
