"""Which webhook signers must sign with v3: no downgrade to the timestamp-less v1.

HubSpot puts the v1 signature (sha256 of secret + body, no timestamp) on every Webhooks-API
request and adds the timestamped v3 for apps that have it. A captured request with its v3
headers removed would still verify as v1, forever. So once a signer (the OAuth app, or a
private app's portal) has been seen signing with v3, a Webhooks-API array it signs without v3
is refused. `SLA_BOT_WEBHOOK_REQUIRE_V3=true` demands v3 from the OAuth app from the first
request. Workflow "Send a webhook" bodies (one JSON object) carry v2 only and are not
affected; private apps that have only ever sent v1 keep working.

The fact is kept in `webhook_signers` (recorded in the same transaction as the batch that
showed it) and cached per process: it only ever goes from "not seen" to "seen".
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot.db.schema import webhook_signers

APP = "app"


def signer_key(private_portal: int | None) -> str:
    """The app's client secret signs for every portal; a private app's only for its own."""
    return APP if private_portal is None else f"portal:{private_portal}"


def is_webhooks_api_array(body: bytes) -> bool:
    """Webhooks-API requests are JSON arrays; workflow webhooks are single objects."""
    return body.lstrip(b" \t\r\n")[:1] == b"["


class V3Signers:
    """Per-process view of `webhook_signers`, asked once per v1/v2 request until it says yes."""

    def __init__(self) -> None:
        self._known: set[str] = set()

    def known(self, signer: str) -> bool:
        """Already recorded (by this process): no need to record it again."""
        return signer in self._known

    def remember(self, signer: str) -> None:
        self._known.add(signer)

    def requires_v3(self, engine: Engine, signer: str, *, require_app: bool = False) -> bool:
        """`require_app`: SLA_BOT_WEBHOOK_REQUIRE_V3, v3 from the OAuth app from the start."""
        if signer in self._known or (require_app and signer == APP):
            return True
        with engine.connect() as conn:
            found = conn.execute(
                select(webhook_signers.c.signer).where(webhook_signers.c.signer == signer)
            ).first()
        if found is not None:
            self._known.add(signer)
        return found is not None
