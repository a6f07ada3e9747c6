"""Try-locks that let one worker process at a time do a job for one key (e.g. a portal).

PostgreSQL: a session advisory lock on its own connection, released when the block ends (or
when the connection dies with its process). SQLite: one machine, one worker; always granted.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine


@contextmanager
def try_lock(engine: Engine, job: str, key: int) -> Iterator[bool]:
    """Yields True if this process holds (job, key) for the block, False if another does."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    ns = zlib.crc32(job.encode()) & 0x7FFFFFFF
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": ns, "key": key % 2**31}
        ).scalar_one()
        conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": ns, "key": key % 2**31}
                )
                conn.commit()
