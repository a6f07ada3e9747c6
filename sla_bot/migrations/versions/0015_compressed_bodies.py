"""Raw webhook bodies may be stored zlib-compressed (`StoredBody`): no schema change.

A revision of its own so that a release older than this one refuses to run against a database
that holds compressed bodies (it would read them as JSON and dead-letter them): every command
checks that the database is at its own head. The downgrade writes such bodies back as they were
received, so that older code, and migration 0010 re-run after it, read them as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

import zlib

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MARK = b"\x00zlib\x00"  # StoredBody.ZLIB_MARK, as of this revision


def upgrade() -> None:
    """Nothing to change: new rows are compressed as they are written, old ones read as is."""


def downgrade() -> None:
    bind = op.get_bind()
    batches = sa.table(
        "webhook_batches", sa.column("id", sa.BigInteger), sa.column("body", sa.LargeBinary)
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(batches.c.id, batches.c.body)
            .where(batches.c.id > last)
            .order_by(batches.c.id)
            .limit(500)
        ).all()
        if not rows:
            return
        for row_id, body in rows:
            body = bytes(body)
            if body.startswith(MARK):
                bind.execute(
                    sa.update(batches)
                    .where(batches.c.id == row_id)
                    .values(body=zlib.decompress(body[len(MARK) :]))
                )
        last = rows[-1][0]
