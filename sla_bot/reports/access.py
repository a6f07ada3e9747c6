"""Who may open /reports: a signed, expiring link, or a configured token. Never open by default.

A link carries `access=v1.<expiry>.<portal|all>.<signature>`: an HMAC-SHA256 over the version,
the expiry (Unix seconds) and the portal it is limited to, keyed with a sub-key derived (HKDF)
from `SLA_BOT_SECRET_KEY` for this purpose only, so the same secret can serve other purposes
(e.g. encrypting stored tokens) without one use ever standing in for another. The first key
signs; every key verifies, so keys rotate without breaking links already sent. A configured
`SLA_BOT_REPORTS_TOKEN` is accepted as `access=<token>` or `Authorization: Bearer <token>`.

Filters are not signed: a link grants its holder the reports of its portal (or all) until it
expires; the page signs nothing new, it carries the same grant to its drill-downs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"sla-bot/reports-link/v1"
VERSION = "v1"
MAX_LIFETIME = timedelta(days=31)
ALL = "all"


def subkey(secret: str, purpose: bytes) -> bytes:
    """A key for one purpose only, derived from the configured secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.strip().encode()
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Grant:
    """Access granted: to one portal's reports, or all (`portal` None), until `expires`."""

    portal: int | None
    expires: datetime | None  # None: the configured token, no expiry
    access: str  # what the page passes on to its drill-down links


@dataclass(frozen=True)
class Refusal:
    reason: str  # safe to log: says why, never what was sent


class Access:
    def __init__(self, secret_keys: Sequence[str] = (), token: str | None = None) -> None:
        self._keys = [subkey(k, PURPOSE) for k in secret_keys if k.strip()]
        self._token = token.strip() if token else None

    def __repr__(self) -> str:
        return "Access(<keys hidden>)"

    @property
    def configured(self) -> bool:
        return bool(self._keys or self._token)

    @property
    def can_sign(self) -> bool:
        return bool(self._keys)

    def _signature(self, key: bytes, expires: int, scope: str) -> str:
        message = f"{VERSION}.{expires}.{scope}".encode()
        return _b64(hmac.new(key, message, hashlib.sha256).digest())

    def sign(self, *, now: datetime, lifetime: timedelta, portal: int | None = None) -> str:
        """A link's `access` value, valid for `lifetime` (at most MAX_LIFETIME)."""
        if not self._keys:
            raise ValueError("SLA_BOT_SECRET_KEY is not set: report links cannot be signed")
        if not timedelta(0) < lifetime <= MAX_LIFETIME:
            raise ValueError(f"a link lives more than 0 and at most {MAX_LIFETIME.days} days")
        expires = int((now + lifetime).timestamp())
        scope = ALL if portal is None else str(portal)
        return f"{VERSION}.{expires}.{scope}.{self._signature(self._keys[0], expires, scope)}"

    def check(self, access: str | None, *, now: datetime) -> Grant | Refusal:
        if not self.configured:
            return Refusal("reports are not configured (no SLA_BOT_SECRET_KEY or token)")
        if not access:
            return Refusal("no access value")
        if self._token is not None and hmac.compare_digest(access.encode(), self._token.encode()):
            return Grant(None, None, access)
        parts = access.split(".")
        if len(parts) != 4 or parts[0] != VERSION or not parts[1].isdigit():
            return Refusal("malformed or unknown access value")
        _, expires_text, scope, signature = parts
        if scope != ALL and not scope.isdigit():
            return Refusal("malformed or unknown access value")
        expires = int(expires_text)
        good = any(
            hmac.compare_digest(self._signature(k, expires, scope), signature) for k in self._keys
        )
        if not good:
            return Refusal("bad signature")
        expiry = datetime.fromtimestamp(expires, UTC)
        if expiry <= now:
            return Refusal("expired link")
        return Grant(None if scope == ALL else int(scope), expiry, access)


def from_settings(settings: object) -> Access:
    key = getattr(settings, "secret_key", None)
    token = getattr(settings, "reports_token", None)
    keys = key.get_secret_value().split(",") if key is not None else []
    return Access(keys, token.get_secret_value() if token is not None else None)
