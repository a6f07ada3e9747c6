"""The outbox claim reads due rows in index order: no pending row without next_attempt_at.

A claim takes the first due row by (next_attempt_at, id). The old pending index held
(channel, next_attempt_at) and the claim also accepted a NULL next_attempt_at, an OR that no
index range answers, so each claim collected every due row and sorted them: after a sweep
decided thousands of leads at one instant, every claim cost milliseconds of database CPU
(measured: 3.9 ms with 10,000 due rows on PostgreSQL; 0.05 ms in index order). No release wrote
a pending row without a time; any such row gets its decision time here, and the index ends
with `id`. The index is rebuilt inside the upgrade's transaction: outbox writes wait for it
(seconds for a million rows kept by retention).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _pending_index(*columns: str) -> None:
    pending = sa.text("status = 'pending'")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.create_index(
        "ix_outbox_pending", "outbox", list(columns), postgresql_where=pending, sqlite_where=pending
    )


def upgrade() -> None:
    op.execute(
        "UPDATE outbox SET next_attempt_at = decided_at "
        "WHERE status = 'pending' AND next_attempt_at IS NULL"
    )
    _pending_index("channel", "next_attempt_at", "id")


def downgrade() -> None:
    _pending_index("channel", "next_attempt_at")
