"""HubSpot portals: OAuth installs (encrypted tokens), used OAuth states, shared rate budgets.

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import UTCDateTime

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hubspot_portals",
        sa.Column("portal_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("app_id", sa.BigInteger(), nullable=True),
        sa.Column("hub_domain", sa.String(length=255), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("access_expires_at", UTCDateTime, nullable=True),
        sa.Column("token_error", sa.Text(), nullable=True),
        sa.Column("paused_until", UTCDateTime, nullable=True),
        sa.Column("installed_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("portal_id", name=op.f("pk_hubspot_portals")),
    )
    op.create_table(
        "oauth_states",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_oauth_states")),
    )
    op.create_table(
        "hubspot_rate_slots",
        sa.Column("portal_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("busy_until", sa.Double(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("portal_id", "bucket", "slot", name=op.f("pk_hubspot_rate_slots")),
    )


def downgrade() -> None:
    op.drop_table("hubspot_rate_slots")
    op.drop_table("oauth_states")
    op.drop_table("hubspot_portals")
