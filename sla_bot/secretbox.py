"""Secrets we must store (OAuth refresh and access tokens) are encrypted with Fernet keys.

`SLA_BOT_SECRET_KEY` holds one or more Fernet keys, comma-separated, newest first: the first
encrypts, every key decrypts (`MultiFernet`). Rotation: put a new key in front, keep the old ones
behind it, restart, run `sla-bot portals rotate-key` (re-encrypts every stored token with the
newest key), then drop the old keys. The same keys sign the OAuth `state` (a Fernet token is
authenticated and carries its creation time, so expiry needs no extra field).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_VARIABLE = "SLA_BOT_SECRET_KEY"
KEY_HINT = (
    "expected one or more Fernet keys (44 characters of url-safe base64), comma-separated, "
    'newest first; make one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class WrongKey(Exception):
    """A stored value cannot be decrypted with any configured key."""


def parse_keys(text: str) -> list[str]:
    """Split and check `SLA_BOT_SECRET_KEY`; ValueError (with the hint) if any key is malformed."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise ValueError(KEY_HINT)
    for key in keys:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ValueError(KEY_HINT) from None
    return keys


class SecretBox:
    """Encrypts with the newest key, decrypts with any; never logs or reprs a secret."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise WrongKey(f"{KEY_VARIABLE} cannot decrypt a stored secret") from None

    def rotate(self, token: str) -> str:
        """The same secret, encrypted with the newest key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise WrongKey(f"{KEY_VARIABLE} cannot decrypt a stored secret") from None

    def seal(self, payload: dict[str, Any], *, now: datetime) -> str:
        """An authenticated, encrypted, time-stamped token for `payload` (URL-safe)."""
        data = json.dumps(payload, separators=(",", ":")).encode()
        return self._fernet.encrypt_at_time(data, int(now.timestamp())).decode()

    def unseal(self, token: str, *, ttl: int, now: datetime) -> dict[str, Any] | None:
        """The payload of a `seal` token younger than `ttl` seconds; None if forged or expired."""
        try:
            data = self._fernet.decrypt_at_time(token.encode(), ttl, int(now.timestamp()))
            payload = json.loads(data)
        except (InvalidToken, ValueError, TypeError):
            return None
        return payload if isinstance(payload, dict) else None
