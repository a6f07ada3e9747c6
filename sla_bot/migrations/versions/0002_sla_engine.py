"""SLA engine: leads with a stored next due time, audit trail, outbox, sync watermarks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("portal_id", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=128), nullable=True),
        sa.Column("policy_hash", sa.String(length=32), nullable=True),
        sa.Column("policy_snapshot", sa.Text(), nullable=True),
        sa.Column("rules_version", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("owner_assigned_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=True),
        sa.Column("clock_started_at", UTCDateTime, nullable=True),
        sa.Column("generation", sa.Integer(), server_default="0", nullable=False),
        sa.Column("properties", sa.Text(), server_default="{}", nullable=False),
        sa.Column("touches", sa.Text(), server_default="[]", nullable=False),
        sa.Column("touch_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("state", sa.Text(), server_default="{}", nullable=False),
        sa.Column("next_due_at", UTCDateTime, nullable=True),
        sa.Column("last_event_ms", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("needs_fetch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("closed_reason", sa.String(length=64), nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("portal_id", "object_id", name="uq_leads_portal_id_object_id"),
    )
    op.create_index(
        "ix_leads_due",
        "leads",
        ["next_due_at"],
        unique=False,
        postgresql_where=sa.text("next_due_at IS NOT NULL"),
        sqlite_where=sa.text("next_due_at IS NOT NULL"),
    )
    op.create_index(
        "ix_leads_needs_fetch",
        "leads",
        ["id"],
        unique=False,
        postgresql_where=sa.text("needs_fetch = 1"),
        sqlite_where=sa.text("needs_fetch = 1"),
    )
    op.create_table(
        "sync_state",
        sa.Column("portal_id", sa.BigInteger(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("watermark", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("portal_id", "job", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "lead_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("lead_id", BigId, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_events_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_events")),
    )
    op.create_index(op.f("ix_lead_events_lead_id"), "lead_events", ["lead_id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("lead_id", BigId, nullable=True),
        sa.Column("portal_id", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=True),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_outbox_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    op.create_index(op.f("ix_outbox_lead_id"), "outbox", ["lead_id"], unique=False)
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["channel", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_outbox_pending",
        table_name="outbox",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_index(op.f("ix_outbox_lead_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_lead_events_lead_id"), table_name="lead_events")
    op.drop_table("lead_events")
    op.drop_table("sync_state")
    op.drop_index(
        "ix_leads_needs_fetch",
        table_name="leads",
        postgresql_where=sa.text("needs_fetch = 1"),
        sqlite_where=sa.text("needs_fetch = 1"),
    )
    op.drop_index(
        "ix_leads_due",
        table_name="leads",
        postgresql_where=sa.text("next_due_at IS NOT NULL"),
        sqlite_where=sa.text("next_due_at IS NOT NULL"),
    )
    op.drop_table("leads")
