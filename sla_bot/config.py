"""Settings from the environment, validated once at start-up.

Every variable is named exactly as the README documents it. Secrets may come from `NAME_FILE`
(Docker/Kubernetes secrets) and are held as `SecretStr`, so they never reach a log line or repr.
A bad value fails start-up with a message naming the variable and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

SECRET_VARIABLES = (
    "HUBSPOT_CLIENT_SECRET",
    "HUBSPOT_ACCESS_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLA_BOT_SECRET_KEY",
    "SLA_BOT_REPORTS_TOKEN",
)
DEFAULT_OAUTH_SCOPES = (
    "crm.objects.contacts.read crm.objects.contacts.write crm.objects.owners.read"
)


class ConfigError(Exception):
    """Start-up configuration is wrong; the message names each variable and what was expected."""


def _env(name: str, default: object = ..., **kw: object) -> object:
    return Field(default, validation_alias=AliasChoices(name), **kw)  # type: ignore[arg-type]


class Settings(BaseModel):
    """All of sla-bot's configuration. Field descriptions feed `sla-bot check-config`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    database_url: str = _env(
        "DATABASE_URL",
        "sqlite:///sla-bot.db",
        description="SQLAlchemy URL; SQLite file in the working directory by default. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    hubspot_client_secret: SecretStr | None = _env(
        "HUBSPOT_CLIENT_SECRET", None, description="HubSpot app client secret (webhook signatures)"
    )
    hubspot_access_token: SecretStr | None = _env(
        "HUBSPOT_ACCESS_TOKEN", None, description="HubSpot private-app or OAuth access token"
    )
    hubspot_api_base_url: str = _env("HUBSPOT_API_BASE_URL", "https://api.hubapi.com")
    hubspot_rate_limit: str = _env(
        "HUBSPOT_RATE_LIMIT",
        "100/10s",
        description="request budget per portal, shared by all workers, requests/window",
    )
    hubspot_search_rate_limit: str = _env(
        "HUBSPOT_SEARCH_RATE_LIMIT", "4/1s", description="search API budget per portal"
    )
    hubspot_portals_file: Path | None = _env(
        "HUBSPOT_PORTALS_FILE",
        None,
        description="YAML/JSON file: private-app portals with their token and client secret",
    )
    hubspot_client_id: str | None = _env(
        "HUBSPOT_CLIENT_ID", None, description="OAuth app client id (install via /oauth/hubspot)"
    )
    hubspot_app_id: int | None = _env(
        "HUBSPOT_APP_ID", None, ge=1, description="OAuth app id; installs of other apps refused"
    )
    hubspot_oauth_redirect_url: str | None = _env(
        "HUBSPOT_OAUTH_REDIRECT_URL",
        None,
        description="the redirect URL registered in the app, https://…/oauth/hubspot/callback",
    )
    hubspot_oauth_scopes: str = _env("HUBSPOT_OAUTH_SCOPES", DEFAULT_OAUTH_SCOPES)
    hubspot_authorize_url: str = _env(
        "HUBSPOT_AUTHORIZE_URL", "https://app.hubspot.com/oauth/authorize"
    )
    hubspot_allowed_portals: str = _env(
        "HUBSPOT_ALLOWED_PORTALS", "", description="portal ids that may install; empty: any"
    )
    secret_key: SecretStr | None = _env(
        "SLA_BOT_SECRET_KEY",
        None,
        description="Fernet key(s), comma-separated, newest first: encrypt stored OAuth tokens, "
        "sign OAuth state and report links (a sub-key for each purpose)",
    )
    hubspot_timeout_seconds: float = _env("HUBSPOT_TIMEOUT_SECONDS", 10.0, gt=0)
    hubspot_portal_id: int | None = _env(
        "HUBSPOT_PORTAL_ID", None, ge=1, description="portal of the token; discovered if unset"
    )
    reconcile_enabled: bool | None = _env(
        "SLA_BOT_RECONCILE_ENABLED", None, description="default: on when a HubSpot token is set"
    )
    reconcile_interval_seconds: float = _env("SLA_BOT_RECONCILE_INTERVAL_SECONDS", 300.0, ge=10)
    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN", None)
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET", None)
    slack_api_base_url: str = _env("SLACK_API_BASE_URL", "https://slack.com/api/")
    slack_timeout_seconds: float = _env(
        "SLACK_TIMEOUT_SECONDS",
        10.0,
        gt=0,
        le=120,
        description="how long one Slack call may take; a hung post then holds only its own row",
    )
    slack_ops_channel: str | None = _env(
        "SLACK_OPS_CHANNEL", None, description="channel for delivery failures and unmapped reps"
    )
    admins: str = _env("SLA_BOT_ADMINS", "", description="Slack user ids that may act on any lead")
    ack_silence: str = _env(
        "SLA_BOT_ACK_SILENCE", "30m", description="how long the I'm-on-it button silences nudges"
    )
    rules_dir: Path = _env("SLA_BOT_RULES_DIR", Path("rules"))
    public_url: str | None = _env(
        "SLA_BOT_PUBLIC_URL",
        None,
        description="exact webhook URL registered in HubSpot, so signatures verify behind a proxy",
    )
    host: str = _env("SLA_BOT_HOST", "127.0.0.1")
    port: int = _env("SLA_BOT_PORT", 8080, ge=1, le=65535)
    web_workers: int = _env("SLA_BOT_WEB_WORKERS", 4, ge=1, le=64)
    web_threads: int = _env(
        "SLA_BOT_WEB_THREADS",
        1,
        ge=1,
        le=64,
        description="threads per web worker (more than 1: gunicorn gthread workers)",
    )
    worker_interval_seconds: float = _env("SLA_BOT_WORKER_INTERVAL_SECONDS", 1.0, gt=0, le=60)
    insecure_allow_unsigned: bool = _env("SLA_BOT_INSECURE_ALLOW_UNSIGNED", False)
    signature_versions: str = _env("SLA_BOT_SIGNATURE_VERSIONS", "v3,v2,v1")
    webhook_require_v3: bool = _env(
        "SLA_BOT_WEBHOOK_REQUIRE_V3",
        False,
        description="Webhooks-API requests signed with the app's secret need v3 from the start",
    )
    max_body_bytes: int = _env("SLA_BOT_MAX_BODY_BYTES", 1024 * 1024, ge=1024)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = _env("SLA_BOT_SQLITE_SYNCHRONOUS", "FULL")
    db_busy_timeout_ms: int = _env("SLA_BOT_DB_BUSY_TIMEOUT_MS", 800, ge=0)
    reports_token: SecretStr | None = _env(
        "SLA_BOT_REPORTS_TOKEN", None, description="a fixed token that opens /reports"
    )
    campaign_properties: str = _env(
        "SLA_BOT_CAMPAIGN_PROPERTIES",
        "utm_campaign,recent_conversion_event_name",
        description="contact properties naming a lead's campaign, first non-empty wins",
    )
    campaign_costs: Path | None = _env(
        "SLA_BOT_CAMPAIGN_COSTS",
        None,
        description="campaign costs CSV; default: campaign-costs.csv in the rules directory",
    )
    worker_stale_seconds: float = _env(
        "SLA_BOT_WORKER_STALE_SECONDS",
        60.0,
        ge=0,
        description="/readyz answers 503 when no worker heartbeat is this recent; 0: no check",
    )
    retention_interval_seconds: float = _env(
        "SLA_BOT_RETENTION_INTERVAL_SECONDS",
        3600.0,
        ge=0,
        description="how often the worker deletes rows past retention; 0: never (`db prune`)",
    )
    retain_webhooks: str = _env(
        "SLA_BOT_RETAIN_WEBHOOKS",
        "7d",
        description="raw webhook bodies and their events (at least 72h: duplicate detection); "
        "an open lead's are kept while it is open",
    )
    retain_closed_leads: str = _env(
        "SLA_BOT_RETAIN_CLOSED_LEADS",
        "90d",
        description="audit trail and delivered outbox rows of a lead closed this long ago",
    )
    retain_dead_letters: str = _env(
        "SLA_BOT_RETAIN_DEAD_LETTERS", "30d", description="dead letters last seen this long ago"
    )
    retain_metric_series: str = _env(
        "SLA_BOT_RETAIN_METRIC_SERIES",
        "7d",
        description="counter rows of processes idle this long are folded into one (totals kept)",
    )
    log_format: Literal["text", "json"] = _env("SLA_BOT_LOG_FORMAT", "text")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _env("SLA_BOT_LOG_LEVEL", "INFO")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        if not v.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("expected a sqlite:/// or postgresql+psycopg:// URL")
        if v.startswith(("postgresql:", "postgres:")) and not v.startswith("postgresql+"):
            v = "postgresql+psycopg:" + v.split(":", 1)[1]
        return v

    @field_validator(
        "hubspot_api_base_url",
        "slack_api_base_url",
        "public_url",
        "hubspot_oauth_redirect_url",
        "hubspot_authorize_url",
    )
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return v

    @field_validator("ack_silence")
    @classmethod
    def _silence(cls, v: str) -> str:
        from sla_bot.durations import parse_duration

        parse_duration(v).as_timedelta()  # wall-clock only, e.g. 30m
        return v

    @field_validator(
        "retain_webhooks", "retain_closed_leads", "retain_dead_letters", "retain_metric_series"
    )
    @classmethod
    def _retention(cls, v: str, info: Any) -> str:
        from datetime import timedelta

        from sla_bot.durations import parse_duration

        try:
            kept = parse_duration(v).as_timedelta()
        except Exception:
            raise ValueError("expected a duration such as 72h, 30d or 12w") from None
        if info.field_name == "retain_webhooks" and kept < timedelta(hours=72):
            raise ValueError(
                "expected at least 72h: HubSpot retries a webhook for up to 3 days, and the "
                "stored events are how duplicates are recognised"
            )
        if kept < timedelta(hours=1):
            raise ValueError("expected at least 1h")
        return v

    def retention(self, name: str) -> Any:
        """A retention setting as a timedelta, e.g. retention("dead_letters")."""
        from sla_bot.durations import parse_duration

        return parse_duration(getattr(self, f"retain_{name}")).as_timedelta()

    @field_validator("hubspot_rate_limit", "hubspot_search_rate_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        parse_rate(v)
        return v

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            from sla_bot.secretbox import parse_keys

            parse_keys(v.get_secret_value())
        return v

    @field_validator("hubspot_allowed_portals")
    @classmethod
    def _portal_ids(cls, v: str) -> str:
        ids = [p.strip() for p in v.split(",") if p.strip()]
        if any(not (p.isascii() and p.isdigit()) for p in ids):
            raise ValueError("expected comma-separated numeric portal ids")
        return ",".join(ids)

    @model_validator(mode="after")
    def _oauth_complete(self) -> Settings:
        if self.hubspot_client_id is None:
            return self
        missing = [
            name
            for name, value in (
                ("HUBSPOT_CLIENT_SECRET", self.hubspot_client_secret),
                ("HUBSPOT_OAUTH_REDIRECT_URL", self.hubspot_oauth_redirect_url),
                ("SLA_BOT_SECRET_KEY", self.secret_key),
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                "HUBSPOT_CLIENT_ID is set (OAuth installs), so "
                + ", ".join(missing)
                + " must be set too"
            )
        return self

    @property
    def oauth_on(self) -> bool:
        """Portals can be installed through /oauth/hubspot/install."""
        return self.hubspot_client_id is not None

    @property
    def allowed_portals(self) -> frozenset[int]:
        return frozenset(int(p) for p in self.hubspot_allowed_portals.split(",") if p)

    @property
    def hubspot_search_rate(self) -> tuple[int, float]:
        return parse_rate(self.hubspot_search_rate_limit)

    @property
    def hubspot_outbound(self) -> bool:
        """Some portal may have credentials: a token, a portals file or OAuth installs."""
        return (
            self.hubspot_access_token is not None
            or self.hubspot_portals_file is not None
            or self.oauth_on
        )

    @field_validator("campaign_properties")
    @classmethod
    def _property_list(cls, v: str) -> str:
        names = [p.strip() for p in v.split(",") if p.strip()]
        if not names or any(not p.replace("_", "").isalnum() for p in names):
            raise ValueError("expected comma-separated HubSpot property names, e.g. utm_campaign")
        return ",".join(names)

    @field_validator("reports_token")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        keys = [k for k in (v.get_secret_value().split(",") if v else []) if k.strip()]
        if v is not None and (not keys or any(len(k.strip()) < 32 for k in keys)):
            raise ValueError("expected at least 32 characters (per comma-separated key)")
        return v

    @property
    def attribution(self) -> Any:
        """Which contact properties say where a lead came from (engine.outcomes.Attribution)."""
        from sla_bot.engine.outcomes import Attribution

        return Attribution(campaign_properties=tuple(self.campaign_properties.split(",")))

    @field_validator("signature_versions")
    @classmethod
    def _versions(cls, v: str) -> str:
        versions = [p.strip() for p in v.split(",") if p.strip()]
        if not versions or any(p not in ("v1", "v2", "v3") for p in versions):
            raise ValueError("expected a comma-separated subset of v3,v2,v1")
        return ",".join(versions)

    @property
    def accepted_signature_versions(self) -> frozenset[str]:
        return frozenset(self.signature_versions.split(","))

    @property
    def hubspot_rate(self) -> tuple[int, float]:
        return parse_rate(self.hubspot_rate_limit)

    @property
    def reconcile_on(self) -> bool:
        """Reconciliation needs credentials; with them it is on unless switched off explicitly."""
        if not self.hubspot_outbound:
            return False
        return self.reconcile_enabled is not False

    def capabilities(self) -> list[str]:
        """Plain statements of what this configuration will and will not do (logged at start)."""
        notes = []
        if self.hubspot_client_secret is None and self.hubspot_portals_file is None:
            if self.insecure_allow_unsigned:
                notes.append(
                    "INSECURE: HUBSPOT_CLIENT_SECRET is not set and "
                    "SLA_BOT_INSECURE_ALLOW_UNSIGNED=true: webhooks are accepted WITHOUT "
                    "signature checks. Never run this way in production."
                )
            else:
                notes.append(
                    "HUBSPOT_CLIENT_SECRET is not set: POST /webhooks/hubspot answers 503 "
                    "(HubSpot will retry) until it is."
                )
        if not self.hubspot_outbound:
            notes.append(
                "HUBSPOT_ACCESS_TOKEN, HUBSPOT_PORTALS_FILE and HUBSPOT_CLIENT_ID are not set: "
                "contacts and owners are not fetched, nothing is written back to HubSpot, and "
                "reconciliation is off."
            )
        if self.oauth_on:
            notes.append(
                "HubSpot portals can be connected at /oauth/hubspot/install (redirect URL "
                f"{self.hubspot_oauth_redirect_url} must be registered in the app)."
            )
        if self.slack_bot_token is None:
            notes.append(
                "SLACK_BOT_TOKEN is not set: nudges and escalations are printed to the log "
                "instead of sent to Slack."
            )
        if self.slack_signing_secret is None:
            notes.append("SLACK_SIGNING_SECRET is not set: Slack buttons are refused.")
        return notes


def parse_rate(text: str) -> tuple[int, float]:
    """'100/10s' -> (100, 10.0)."""
    try:
        count, window = text.split("/")
        if window.endswith("ms"):
            seconds = float(window[:-2]) / 1000
        elif window.endswith("s"):
            seconds = float(window[:-1])
        elif window.endswith("m"):
            seconds = float(window[:-1]) * 60
        else:
            seconds = float(window)
        n = int(count)
    except ValueError:
        raise ValueError("expected REQUESTS/WINDOW such as 100/10s") from None
    if n < 1 or seconds <= 0:
        raise ValueError("expected a positive count and window such as 100/10s")
    return n, seconds


def _resolve_secret_files(environ: Mapping[str, str]) -> dict[str, str]:
    """Fold NAME_FILE variables into NAME; both set at once is ambiguous and refused."""
    env = dict(environ)
    errors = []
    for name in SECRET_VARIABLES:
        file_var = f"{name}_FILE"
        if file_var not in env:
            continue
        if name in env:
            errors.append(f"{name} and {file_var} are both set: expected only one of them")
            continue
        path = Path(env[file_var])
        try:
            env[name] = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            errors.append(f"{file_var}: cannot read {path}: {exc.strerror}")
    if errors:
        raise ConfigError("\n".join(errors))
    return env


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raise ConfigError naming each bad variable."""
    env = _resolve_secret_files(os.environ if environ is None else environ)
    names = {f: (info.validation_alias.choices[0]) for f, info in Settings.model_fields.items()}  # type: ignore[union-attr]
    # An empty value means "not set" (docker compose passes `${VAR:-}` through as "").
    relevant = {k: v for k, v in env.items() if k in names.values() and v.strip() != ""}
    try:
        return Settings.model_validate(relevant)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a rule across variables: the message names them
                lines.append(msg)
                continue
            var = str(err["loc"][0])
            shown = "<hidden>" if var in SECRET_VARIABLES else repr(relevant.get(var))
            lines.append(f"{var}={shown}: {msg}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def describe_settings(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) pairs for display, secrets masked."""
    rows = []
    for field, info in Settings.model_fields.items():
        var = info.validation_alias.choices[0]  # type: ignore[union-attr]
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            shown = "(set, hidden)"
        elif value is None:
            shown = "(not set)"
        elif var == "DATABASE_URL":
            shown = redact_url(str(value))
        else:
            shown = str(value)
        rows.append((var, shown))
    return rows


def redact_url(url: str) -> str:
    """Hide the password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable>"
