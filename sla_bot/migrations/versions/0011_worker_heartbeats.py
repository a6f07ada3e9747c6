"""Worker heartbeats: one row per worker process, so a dead worker shows on /readyz; an index
for retention (a batch is deleted once none of its events is left).

The heartbeat used to be a gauge row in `metric_series`; the gauge now reads this table, so the
old rows go.

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OLD_HEARTBEAT = "sla_bot_worker_last_heartbeat_timestamp_seconds"


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("beat_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index("ix_webhook_events_batch_id", "webhook_events", ["batch_id"])
    op.execute(sa.text("DELETE FROM metric_series WHERE name = :n").bindparams(n=OLD_HEARTBEAT))


def downgrade() -> None:
    op.drop_index("ix_webhook_events_batch_id", table_name="webhook_events")
    op.drop_table("worker_heartbeats")
