"""Slack pacing shared by every worker process: one row per conversation, its next free slot.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_pacing",
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("next_slot", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_slack_pacing")),
    )


def downgrade() -> None:
    op.drop_table("slack_pacing")
