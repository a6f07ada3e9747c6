"""Logging set-up: human text by default, one JSON object per line with SLA_BOT_LOG_FORMAT=json.

Log calls never include secrets or full payloads; callers log ids and counts.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("portal_id", "object_id", "batch_id", "request_id", "events"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def db_error(exc: BaseException) -> str:
    """A database error fit for a log line: its class and the driver's first line.

    Engines hide SQL parameters (`hide_parameters=True`), but the driver's own message can
    still quote values (PostgreSQL's DETAIL "Failing row contains (...)", "Key (...)=(...)"),
    and a traceback would print it whole; so log this, not the exception.
    """
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first[:300]}"


class ScrubDatabaseErrors(logging.Filter):
    """`log.exception` on a database error prints its frames and `db_error`, nothing else.

    A traceback prints the exception's message and its chained causes in full, and the
    driver's message can quote row values; the frames say where it happened, which is enough.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from sqlalchemy.exc import DBAPIError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, DBAPIError):
            frames = "".join(traceback.format_tb(exc.__traceback__))
            record.exc_text = f"Traceback (most recent call last):\n{frames}{db_error(exc)}"
        return True


def configure(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubDatabaseErrors())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
