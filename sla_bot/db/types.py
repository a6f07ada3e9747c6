"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the engine stores (SQLite keeps naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StoredBody(TypeDecorator[bytes]):
    """A raw webhook body: the exact bytes out that went in, zlib-compressed at rest.

    A 100-event batch is ~20 KB of repetitive JSON that zlib (level 1, ~30 us) shrinks ~18
    times: on SQLite that is one WAL page instead of six, and far less to checkpoint and fsync
    on every webhook (docs/performance.md). A compressed value starts with `ZLIB_MARK`, which
    no JSON text can start with (JSON never starts with NUL, nor with "z" in any encoding), so
    rows written before compression, and bodies that compress badly, are stored as they are
    and read back unchanged. Only for columns holding validated JSON: a dead letter's body
    could be anything, so it stays a plain LargeBinary.
    """

    impl = LargeBinary
    cache_ok = True
    ZLIB_MARK = b"\x00zlib\x00"
    MIN_SIZE = 512  # below this, a body is stored as it is (compression saves no page)

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        if value is None or len(value) < self.MIN_SIZE:
            return value
        packed = self.ZLIB_MARK + zlib.compress(value, 1)
        return packed if len(packed) < len(value) else value

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        value = bytes(value)  # memoryview from psycopg
        if value.startswith(self.ZLIB_MARK):
            return zlib.decompress(value[len(self.ZLIB_MARK) :])
        return value


def without_nul(value: Any) -> Any:
    """A string with NUL as U+FFFD (anything else as it is): what PostgreSQL text can hold."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


class _WithoutNul(TypeDecorator[str]):
    """What `NulFreeString` and `NulFreeText` share: NUL becomes U+FFFD on the way in."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return without_nul(value)


class NulFreeString(_WithoutNul):
    """A string column for text from outside (CRM values, error messages quoting a body): NUL
    is stored as U+FFFD.

    HubSpot passes "\\u0000" through in property values and JSON keys, and PostgreSQL text
    cannot hold NUL: one such value would fail every write of its lead, or a dead letter's
    INSERT. Replaced on every database alike, so SQLite and PostgreSQL store the same. JSON
    columns escape NUL themselves; the splitter's raw INSERTs, which bypass column types, do
    the same replacement.
    """

    cache_ok = True


class NulFreeText(_WithoutNul):
    """`NulFreeString` for unbounded text (TEXT on PostgreSQL)."""

    impl = Text
    cache_ok = True
