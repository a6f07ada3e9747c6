"""The `hubspot_portals` table: one row per OAuth install, or per private-app portal that was
removed or paused. Tokens are stored only as Fernet ciphertext (see `sla_bot.secretbox`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from integrations.hubspot.oauth import TokenInfo, TokenSet
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import hubspot_portals, oauth_states
from sla_bot.secretbox import SecretBox, WrongKey

OAUTH = "oauth"
PRIVATE_APP = "private_app"
ACTIVE, REVOKED, REMOVED = "active", "revoked", "removed"


class StateReplayed(Exception):
    """The OAuth `state` of this callback was used before."""


@dataclass(frozen=True)
class Portal:
    """A stored portal row without its secrets."""

    portal_id: int
    auth: str
    status: str
    app_id: int | None
    hub_domain: str | None
    scopes: str | None
    has_tokens: bool
    access_expires_at: datetime | None
    token_error: str | None
    paused_until: datetime | None
    installed_at: datetime
    updated_at: datetime


_PUBLIC = [c for c in hubspot_portals.c if c.name not in ("refresh_token", "access_token")]


def load_all(engine: Engine) -> dict[int, Portal]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(*_PUBLIC, hubspot_portals.c.refresh_token.is_not(None).label("has_tokens"))
        ).all()
    return {r.portal_id: Portal(**r._mapping) for r in rows}


def state_used(engine: Engine, nonce: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(select(oauth_states.c.nonce).where(oauth_states.c.nonce == nonce))
        return found.first() is not None


def _upsert(engine: Engine):  # type: ignore[no-untyped-def]
    return (postgresql if engine.dialect.name == "postgresql" else sqlite).insert


def save_install(
    engine: Engine,
    *,
    info: TokenInfo,
    tokens: TokenSet,
    box: SecretBox,
    nonce: str,
    state_expires_at: datetime,
    now: datetime,
) -> None:
    """Consume the state and store the portal's tokens, in one transaction (all or nothing)."""
    values = {
        "auth": OAUTH,
        "status": ACTIVE,
        "app_id": info.app_id,
        "hub_domain": info.hub_domain,
        "scopes": " ".join(info.scopes),
        "refresh_token": box.encrypt(tokens.refresh_token),
        "access_token": box.encrypt(tokens.access_token),
        "access_expires_at": now + timedelta(seconds=tokens.expires_in),
        "token_error": None,
        "paused_until": None,
        "updated_at": now,
    }
    stmt = _upsert(engine)(hubspot_portals).values(
        portal_id=info.portal_id, installed_at=now, **values
    )
    stmt = stmt.on_conflict_do_update(index_elements=[hubspot_portals.c.portal_id], set_=values)
    try:
        with write_transaction(engine) as conn:
            conn.execute(
                insert(oauth_states).values(nonce=nonce, used_at=now, expires_at=state_expires_at)
            )
            conn.execute(stmt)
    except IntegrityError:
        raise StateReplayed(nonce) from None


def set_status(
    engine: Engine, portal_id: int, status: str, *, now: datetime, error: str | None = None
) -> None:
    """Mark a portal revoked or removed (a removed one forgets its tokens; history stays)."""
    values: dict[str, object] = {"status": status, "updated_at": now, "token_error": error}
    if status == REMOVED:
        values |= {"refresh_token": None, "access_token": None, "access_expires_at": None}
    stmt = _upsert(engine)(hubspot_portals).values(
        portal_id=portal_id, auth=PRIVATE_APP, installed_at=now, **values
    )
    stmt = stmt.on_conflict_do_update(index_elements=[hubspot_portals.c.portal_id], set_=values)
    with write_transaction(engine, background=True) as conn:
        conn.execute(stmt)


def pause(engine: Engine, portal_id: int, until: datetime, *, now: datetime) -> None:
    """HubSpot's daily limit is spent: no calls for this portal until `until`."""
    values = {"paused_until": until, "updated_at": now}
    stmt = _upsert(engine)(hubspot_portals).values(
        portal_id=portal_id, auth=PRIVATE_APP, status=ACTIVE, installed_at=now, **values
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[hubspot_portals.c.portal_id],
        set_=values,
        where=(hubspot_portals.c.paused_until.is_(None)) | (hubspot_portals.c.paused_until < until),
    )
    with write_transaction(engine, background=True) as conn:
        conn.execute(stmt)


def undecryptable(engine: Engine, box: SecretBox | None) -> list[int]:
    """Portals whose stored tokens the configured key cannot read (all of them without a key)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(hubspot_portals.c.portal_id, hubspot_portals.c.refresh_token).where(
                hubspot_portals.c.refresh_token.is_not(None)
            )
        ).all()
    bad = []
    for portal_id, token in rows:
        try:
            if box is None:
                raise WrongKey("no key")
            box.decrypt(token)
        except WrongKey:
            bad.append(portal_id)
    return bad


def rotate_key(engine: Engine, box: SecretBox, *, now: datetime) -> int:
    """Re-encrypt every stored token with the newest key; returns how many portals."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                hubspot_portals.c.portal_id,
                hubspot_portals.c.refresh_token,
                hubspot_portals.c.access_token,
            ).where(hubspot_portals.c.refresh_token.is_not(None))
        ).all()
    for portal_id, refresh, access in rows:
        with write_transaction(engine) as conn:
            conn.execute(
                update(hubspot_portals)
                .where(hubspot_portals.c.portal_id == portal_id)
                .values(
                    refresh_token=box.rotate(refresh),
                    access_token=box.rotate(access) if access else None,
                    updated_at=now,
                )
            )
    return len(rows)
