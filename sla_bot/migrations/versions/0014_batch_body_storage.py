"""PostgreSQL: raw webhook bodies compressed with lz4 (or stored uncompressed), not pglz.

A 100-event batch is ~20 KB, so PostgreSQL TOASTs and, by default, pglz-compresses it inside
the webhook's INSERT, on the request path. lz4 (PostgreSQL 14+, when the server was built
with it) costs a fraction of pglz's CPU and compresses JSON nearly as well; without lz4, the
body is stored uncompressed (STORAGE EXTERNAL), trading disk for the request's CPU. Retention
(`sla-bot db prune`) bounds how many bodies are kept. SQLite stores blobs as they are.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _has_lz4(bind: sa.engine.Connection) -> bool:
    found = bind.execute(
        sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    ).scalar()
    return bool(found)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if _has_lz4(bind):
        op.execute("ALTER TABLE webhook_batches ALTER COLUMN body SET COMPRESSION lz4")
    else:
        op.execute("ALTER TABLE webhook_batches ALTER COLUMN body SET STORAGE EXTERNAL")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE webhook_batches ALTER COLUMN body SET STORAGE EXTENDED")
    if _has_lz4(bind):
        op.execute("ALTER TABLE webhook_batches ALTER COLUMN body SET COMPRESSION pglz")
