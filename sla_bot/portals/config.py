"""Private-app portals: `HUBSPOT_ACCESS_TOKEN` (one portal) and `HUBSPOT_PORTALS_FILE` (many).

The portals file is YAML (or JSON, which YAML reads too)::

    portals:
      - portal_id: 62515
        access_token_file: /run/secrets/hubspot-62515-token     # or access_token_env: VAR
        client_secret_file: /run/secrets/hubspot-62515-secret   # or client_secret_env: VAR
        rate_limit: 190/10s                                      # optional, else HUBSPOT_RATE_LIMIT

Secrets are never written in the file itself: each comes from a file (relative paths are read
next to the portals file) or an environment variable. Every problem is a ConfigError naming the
file, the entry and the field.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from sla_bot.config import ConfigError, Settings, parse_rate

ENV_SOURCE = "HUBSPOT_ACCESS_TOKEN"


@dataclass(frozen=True)
class PrivatePortal:
    """A portal reached with a private app's token (or a token given by the operator)."""

    portal_id: int | None  # None: HUBSPOT_ACCESS_TOKEN without HUBSPOT_PORTAL_ID (discovered)
    token: SecretStr
    client_secret: SecretStr | None
    rate_limit: tuple[int, float] | None
    source: str  # where it is configured, for messages

    def __repr__(self) -> str:
        return f"PrivatePortal({self.portal_id}, from {self.source})"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portal_id: int = Field(ge=1, lt=2**53)
    access_token_file: str | None = None
    access_token_env: str | None = None
    client_secret_file: str | None = None
    client_secret_env: str | None = None
    rate_limit: str | None = None

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, v: str | None) -> str | None:
        if v is not None:
            parse_rate(v)
        return v


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portals: list[_Entry]


_cache: dict[tuple[str, int], list[PrivatePortal]] = {}
_cache_lock = threading.Lock()


def configured_portals(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[PrivatePortal]:
    """Every private-app portal the configuration names; ConfigError on any problem."""
    env = os.environ if environ is None else environ
    found: list[PrivatePortal] = []
    if settings.hubspot_access_token is not None:
        found.append(
            PrivatePortal(
                settings.hubspot_portal_id,
                settings.hubspot_access_token,
                settings.hubspot_client_secret,
                None,
                ENV_SOURCE,
            )
        )
    if settings.hubspot_portals_file is not None:
        found += _read_file(Path(settings.hubspot_portals_file), env)
    seen: dict[int, str] = {}
    for p in found:
        if p.portal_id is None:
            continue
        if p.portal_id in seen:
            raise ConfigError(
                f"portal {p.portal_id} is configured twice ({seen[p.portal_id]} and {p.source})"
            )
        seen[p.portal_id] = p.source
    return found


def webhook_secrets(settings: Settings) -> list[tuple[str, int | None]]:
    """(client secret, portal) pairs a webhook may be signed with: the app's secret (any
    portal, None), then each private app's (only its own portal)."""
    pairs: dict[str, int | None] = {}
    if settings.hubspot_client_secret is not None:
        pairs[settings.hubspot_client_secret.get_secret_value()] = None
    for portal in configured_portals(settings):
        if portal.client_secret is not None and portal.source != ENV_SOURCE:
            pairs.setdefault(portal.client_secret.get_secret_value(), portal.portal_id)
    return list(pairs.items())


def _read_file(path: Path, env: Mapping[str, str]) -> list[PrivatePortal]:
    where = f"HUBSPOT_PORTALS_FILE {path}"
    try:
        stamp = path.stat().st_mtime_ns
        key = (str(path.resolve()), stamp)
        with _cache_lock:
            if key in _cache and env is os.environ:
                return _cache[key]
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML/JSON: {exc}") from None
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            lines.append(f"{where}: {loc.lstrip('.') or 'top level'}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None
    out = []
    for i, entry in enumerate(parsed.portals):
        at = f"{where}: portals[{i}] (portal {entry.portal_id})"
        token = _secret(
            at,
            "access_token",
            entry.access_token_file,
            entry.access_token_env,
            env,
            path.parent,
            required=True,
        )
        secret = _secret(
            at,
            "client_secret",
            entry.client_secret_file,
            entry.client_secret_env,
            env,
            path.parent,
            required=False,
        )
        rate = parse_rate(entry.rate_limit) if entry.rate_limit else None
        assert token is not None
        out.append(PrivatePortal(entry.portal_id, token, secret, rate, f"{path}[{i}]"))
    if env is os.environ:
        with _cache_lock:
            _cache[key] = out
    return out


def _secret(
    at: str,
    name: str,
    file: str | None,
    var: str | None,
    env: Mapping[str, str],
    base: Path,
    *,
    required: bool,
) -> SecretStr | None:
    if file is not None and var is not None:
        raise ConfigError(f"{at}: give {name}_file or {name}_env, not both")
    if file is not None:
        target = base / file
        try:
            value = target.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{at}: {name}_file {target}: {exc.strerror}") from None
    elif var is not None:
        value = env.get(var, "").strip()
        if not value:
            raise ConfigError(f"{at}: {name}_env names {var}, which is not set")
    elif required:
        raise ConfigError(f"{at}: {name}_file or {name}_env is required")
    else:
        return None
    if not value:
        raise ConfigError(f"{at}: {name} is empty")
    return SecretStr(value)
