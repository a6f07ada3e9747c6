"""Tables. Every lead-related row is keyed by (portal_id, object_id): one deployment, many portals.

The webhook path writes one `webhook_batches` row per request (the cheapest durable write); the
worker splits batches into `webhook_events`, where a unique key drops HubSpot's duplicate
deliveries before any lead processing. Pending rows are found through partial indexes so a
sweep costs the same with 10 or 10 million processed rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from sla_bot.db.types import BigId, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

webhook_batches = Table(
    "webhook_batches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # "webhooks_api" | "workflow"
    Column("signature_version", String(8), nullable=False),  # v1 | v2 | v3 | none
    Column("portal_hint", BigInteger, nullable=True),  # ?portalId= for workflow payloads
    Column("body", LargeBinary, nullable=False),  # raw bytes exactly as signed
    Column("processed_at", UTCDateTime, nullable=True),
    Column("events_total", Integer, nullable=True),
    Column("events_new", Integer, nullable=True),
    Column("events_duplicate", Integer, nullable=True),
    Column("error", Text, nullable=True),
)
Index(
    "ix_webhook_batches_pending",
    webhook_batches.c.id,
    postgresql_where=webhook_batches.c.processed_at.is_(None),
    sqlite_where=webhook_batches.c.processed_at.is_(None),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("portal_id", BigInteger, nullable=False),
    Column("object_id", BigInteger, nullable=False),
    Column("subscription_type", String(64), nullable=False),
    Column("subscription_id", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("occurred_at_ms", BigInteger, nullable=False),
    Column("property_name", String(255), nullable=False, server_default=""),
    Column("property_value", Text, nullable=True),
    Column("change_source", String(64), nullable=True),
    Column("attempt_number", Integer, nullable=False, server_default="0"),
    Column("batch_index", Integer, nullable=False),  # position in the raw batch body
    Column("batch_id", BigId, ForeignKey("webhook_batches.id"), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("outcome", String(32), nullable=True),  # e.g. applied | ignored:unknown_type
    UniqueConstraint(
        "portal_id",
        "subscription_id",
        "event_id",
        "object_id",
        "occurred_at_ms",
        "property_name",
        name="uq_webhook_events_dedupe",
    ),
)
Index(
    "ix_webhook_events_pending",
    webhook_events.c.portal_id,
    webhook_events.c.object_id,
    webhook_events.c.occurred_at_ms,
    postgresql_where=webhook_events.c.processed_at.is_(None),
    sqlite_where=webhook_events.c.processed_at.is_(None),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("times_seen", Integer, nullable=False, server_default="1"),
    Column("source", String(32), nullable=False),  # hubspot_webhook | hubspot_batch
    Column("reason", Text, nullable=False),
    Column("content_type", String(255), nullable=True),
    Column("signature_version", String(8), nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("body_sha256", String(64), nullable=False, unique=True),
    Column("resolved_at", UTCDateTime, nullable=True),
)
