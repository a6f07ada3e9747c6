"""JSON error responses, one shape everywhere: {"error": ..., "details": [...]}."""

from __future__ import annotations

import json

from flask import Response


def json_error_body(message: str, details: list[str] | None = None) -> bytes:
    """The body of every JSON error (Flask views and the raw webhook endpoint alike)."""
    body: dict[str, object] = {"error": message}
    if details:
        body["details"] = details
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def json_error(status: int, message: str, details: list[str] | None = None) -> Response:
    return Response(json_error_body(message, details), status=status, mimetype="application/json")
