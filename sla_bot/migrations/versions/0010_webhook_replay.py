"""Replay defences for webhook intake: raw batches deduplicated by body hash, v3 signers.

- `webhook_batches.body_sha256` with a unique index: the same body stored twice is one row.
  Existing rows are backfilled; a body that repeats an earlier row's keeps NULL (NULLs never
  collide), so the migration never fails on history that already holds replays.
- `webhook_signers`: signers seen with a v3 signature, which must use v3 from then on.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-30
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from sla_bot.db.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHUNK = 500


def upgrade() -> None:
    op.add_column("webhook_batches", sa.Column("body_sha256", sa.String(length=64), nullable=True))
    batches = sa.table(
        "webhook_batches",
        sa.column("id", sa.BigInteger()),
        sa.column("body", sa.LargeBinary()),
        sa.column("body_sha256", sa.String()),
    )
    conn = op.get_bind()
    seen: set[str] = set()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(batches.c.id, batches.c.body)
            .where(batches.c.id > last)
            .order_by(batches.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        for row in rows:
            digest = hashlib.sha256(row.body).hexdigest()
            if digest not in seen:
                seen.add(digest)
                conn.execute(
                    batches.update().where(batches.c.id == row.id).values(body_sha256=digest)
                )
        last = rows[-1].id
    op.create_index(
        "ix_webhook_batches_body_sha256", "webhook_batches", ["body_sha256"], unique=True
    )
    op.create_table(
        "webhook_signers",
        sa.Column("signer", sa.String(length=64), nullable=False),
        sa.Column("v3_seen_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("signer", name=op.f("pk_webhook_signers")),
    )


def downgrade() -> None:
    op.drop_table("webhook_signers")
    op.drop_index("ix_webhook_batches_body_sha256", table_name="webhook_batches")
    # Plain ALTER (SQLite >= 3.35 has DROP COLUMN): batch mode would copy and drop the table,
    # which webhook_events' foreign key forbids.
    op.execute("ALTER TABLE webhook_batches DROP COLUMN body_sha256")
