"""What `sla-bot portals list` shows: every portal we know, how it connects, and how it is doing.

Read-only and offline: nothing here calls HubSpot. Known portals are those configured (env or
portals file), those with a row (OAuth installs, removed or paused ones) and those with leads
but no credentials (their leads are routed on what their webhooks carry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from sla_bot.config import ConfigError, Settings
from sla_bot.db.schema import leads, sync_state, webhook_events
from sla_bot.portals import store
from sla_bot.portals.config import ENV_SOURCE, configured_portals
from sla_bot.portals.tokens import MARGIN
from sla_bot.secretbox import SecretBox


@dataclass(frozen=True)
class PortalStatus:
    portal_id: int
    auth: str  # "OAuth", "private app (…)" or "none"
    status: str  # active | removed | revoked | paused until … | no credentials
    token: str  # token health, in words
    last_webhook: datetime | None
    last_reconciliation: datetime | None
    leads_open: int

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("last_webhook", "last_reconciliation"):
            value = out[key]
            out[key] = value.isoformat() if isinstance(value, datetime) else None
        return out


def portal_statuses(
    engine: Engine, settings: Settings, box: SecretBox | None, *, now: datetime
) -> list[PortalStatus]:
    rows = store.load_all(engine)
    configured = {p.portal_id: p for p in configured_portals(settings) if p.portal_id is not None}
    bad_keys = set(store.undecryptable(engine, box))
    with engine.connect() as conn:
        open_leads = dict(
            conn.execute(
                select(leads.c.portal_id, func.count())
                .where(leads.c.status.in_(("open", "paused")))
                .group_by(leads.c.portal_id)
            ).all()
        )
        webhooks = dict(
            conn.execute(
                select(webhook_events.c.portal_id, func.max(webhook_events.c.received_at))
                .where(webhook_events.c.subscription_type != "contact.sync")
                .group_by(webhook_events.c.portal_id)
            ).all()
        )
        reconciled = dict(
            conn.execute(
                select(sync_state.c.portal_id, sync_state.c.updated_at).where(
                    sync_state.c.job == "reconcile"
                )
            ).all()
        )
    out = []
    for portal_id in sorted(set(rows) | set(configured) | set(open_leads)):
        row, private = rows.get(portal_id), configured.get(portal_id)
        if private is not None:
            source = "HUBSPOT_ACCESS_TOKEN" if private.source == ENV_SOURCE else "portals file"
            auth, token = f"private app ({source})", "static token (not checked offline)"
        elif row is not None and row.auth == store.OAUTH:
            auth, token = "OAuth", _oauth_health(row, portal_id in bad_keys, now)
        else:
            auth, token = "none", "no credentials: routed on webhook data only"
        status = "active" if (private is not None or auth == "OAuth") else "no credentials"
        if row is not None and row.status != store.ACTIVE:
            status = row.status
        elif row is not None and row.paused_until is not None and row.paused_until > now:
            status = f"paused until {row.paused_until:%Y-%m-%d %H:%M}Z (daily limit)"
        out.append(
            PortalStatus(
                portal_id,
                auth,
                status,
                token,
                _aware(webhooks.get(portal_id)),
                reconciled.get(portal_id),
                int(open_leads.get(portal_id, 0)),
            )
        )
    return out


def _oauth_health(row: store.Portal, undecryptable: bool, now: datetime) -> str:
    if row.status == store.REVOKED:
        return f"revoked: {row.token_error or 'refresh token refused'}"
    if not row.has_tokens:
        return "no tokens stored"
    if undecryptable:
        return "stored tokens cannot be decrypted with SLA_BOT_SECRET_KEY"
    expires = row.access_expires_at
    if expires is not None and expires - MARGIN > now:
        return f"access token valid until {expires:%H:%M}Z"
    return "access token expired; refreshed on the next call"


def _aware(value: object) -> datetime | None:
    """`max()` over a UTC column comes back naive on SQLite."""
    from datetime import UTC

    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_startup(engine: Engine, settings: Settings, box: SecretBox | None) -> None:
    """Refuse to start on a bad portals file, or stored tokens the key cannot decrypt."""
    configured_portals(settings)
    bad = store.undecryptable(engine, box)
    if not bad:
        return
    ids = ", ".join(str(p) for p in bad)
    if box is None:
        raise ConfigError(
            f"SLA_BOT_SECRET_KEY is not set, but the OAuth tokens of portal(s) {ids} are stored "
            "encrypted: set it to the key they were stored with"
        )
    raise ConfigError(
        f"SLA_BOT_SECRET_KEY cannot decrypt the stored OAuth tokens of portal(s) {ids}: wrong "
        "key? After a rotation keep the old key after the new one (comma-separated) until "
        "`sla-bot portals rotate-key` has run"
    )
