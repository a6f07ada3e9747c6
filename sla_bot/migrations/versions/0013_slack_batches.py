"""Slack noise control: batched escalations (one message per manager or channel and window).

Revision ID: 0013
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import BigId, UTCDateTime

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_batches",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("portal_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_key", sa.String(length=255), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("closes_at", UTCDateTime, nullable=False),
        sa.Column("post_at", UTCDateTime, nullable=False),
        sa.Column("max_per_hour", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_batches")),
    )
    op.create_index(
        "ix_slack_batches_batch_key_closes_at", "slack_batches", ["batch_key", "closes_at"]
    )
    op.create_table(
        "slack_batch_items",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("batch_id", BigId, nullable=False),
        sa.Column("outbox_id", BigId, nullable=False),
        sa.Column("lead_id", BigId, nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("folded", sa.Integer(), nullable=False),
        sa.Column("added_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_batch_items")),
        sa.UniqueConstraint("outbox_id", name="uq_slack_batch_items_outbox_id"),
    )
    op.create_index("ix_slack_batch_items_batch_id", "slack_batch_items", ["batch_id"])


def downgrade() -> None:
    op.drop_table("slack_batch_items")
    op.drop_table("slack_batches")
