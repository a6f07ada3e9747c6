"""Slack: thread roots per lead and conversation, and the owner e-mail -> Slack user cache.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import BigId, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_threads",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("lead_id", BigId, nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("root_payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=255), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_threads")),
        sa.UniqueConstraint("lead_id", "target", name="uq_slack_threads_lead_id_target"),
    )
    op.create_table(
        "slack_users",
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("fetched_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_slack_users")),
    )


def downgrade() -> None:
    op.drop_table("slack_users")
    op.drop_table("slack_threads")
