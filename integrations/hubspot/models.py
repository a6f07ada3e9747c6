"""Plain, SDK-independent values returned by :class:`~integrations.hubspot.client.HubSpotClient`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Contact:
    id: str
    properties: dict[str, str | None] = field(hash=False)
    updated_at: datetime | None
    archived: bool = False

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.properties.get(name)
        return default if value is None else value


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    primary: bool


@dataclass(frozen=True)
class Owner:
    """A HubSpot owner. ``id`` is what ``hubspot_owner_id`` holds; ``user_id`` is not."""

    id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    user_id: int | None
    teams: tuple[Team, ...]
    archived: bool

    @property
    def name(self) -> str:
        full = " ".join(p.strip() for p in (self.first_name, self.last_name) if p and p.strip())
        return full or self.email or f"owner {self.id}"

    @property
    def primary_team(self) -> Team | None:
        return next((t for t in self.teams if t.primary), self.teams[0] if self.teams else None)


def epoch_ms(at: datetime) -> int:
    """Epoch milliseconds of an aware datetime (HubSpot's filter format for dates)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("aware datetime required")
    return int(at.timestamp() * 1000)


def as_utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def contact_from_sdk(obj: Any) -> Contact:
    """From any SDK ``SimplePublicObject``-like value."""
    return Contact(
        id=str(obj.id),
        properties=dict(obj.properties or {}),
        updated_at=as_utc(getattr(obj, "updated_at", None)),
        archived=bool(getattr(obj, "archived", False)),
    )


def owner_from_sdk(obj: Any) -> Owner:
    """From the SDK's ``PublicOwner``."""
    teams = tuple(Team(str(t.id), t.name or "", bool(t.primary)) for t in (obj.teams or ()))
    return Owner(
        id=str(obj.id),
        email=obj.email,
        first_name=obj.first_name,
        last_name=obj.last_name,
        user_id=obj.user_id,
        teams=teams,
        archived=bool(obj.archived),
    )
