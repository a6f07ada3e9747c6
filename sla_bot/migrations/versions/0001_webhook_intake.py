"""Webhook intake: raw batches, deduplicated events, dead letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import BigId, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_batches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("signature_version", sa.String(8), nullable=False),
        sa.Column("portal_hint", sa.BigInteger, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("processed_at", UTCDateTime, nullable=True),
        sa.Column("events_total", sa.Integer, nullable=True),
        sa.Column("events_new", sa.Integer, nullable=True),
        sa.Column("events_duplicate", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_batches"),
    )
    op.create_index(
        "ix_webhook_batches_pending",
        "webhook_batches",
        ["id"],
        postgresql_where=sa.text("processed_at IS NULL"),
        sqlite_where=sa.text("processed_at IS NULL"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("portal_id", sa.BigInteger, nullable=False),
        sa.Column("object_id", sa.BigInteger, nullable=False),
        sa.Column("subscription_type", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger, nullable=False),
        sa.Column("property_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("property_value", sa.Text, nullable=True),
        sa.Column("change_source", sa.String(64), nullable=True),
        sa.Column("attempt_number", sa.Integer, nullable=False, server_default="0"),
        sa.Column("batch_index", sa.Integer, nullable=False),
        sa.Column("batch_id", BigId, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("processed_at", UTCDateTime, nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_events"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["webhook_batches.id"],
            name="fk_webhook_events_batch_id_webhook_batches",
        ),
        sa.UniqueConstraint(
            "portal_id",
            "subscription_id",
            "event_id",
            "object_id",
            "occurred_at_ms",
            "property_name",
            name="uq_webhook_events_dedupe",
        ),
    )
    op.create_index(
        "ix_webhook_events_pending",
        "webhook_events",
        ["portal_id", "object_id", "occurred_at_ms"],
        postgresql_where=sa.text("processed_at IS NULL"),
        sqlite_where=sa.text("processed_at IS NULL"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("times_seen", sa.Integer, nullable=False, server_default="1"),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("signature_version", sa.String(8), nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint("body_sha256", name="uq_dead_letters_body_sha256"),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_index("ix_webhook_events_pending", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index("ix_webhook_batches_pending", table_name="webhook_batches")
    op.drop_table("webhook_batches")
