"""Alembic environment: runs on the connection sla_bot.db.migrate hands it."""

from alembic import context

from sla_bot.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via sla_bot.db.migrate
    raise RuntimeError("run migrations through `sla-bot db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
