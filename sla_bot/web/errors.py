"""JSON error responses, one shape everywhere: {"error": ..., "details": [...]}."""

from __future__ import annotations

from flask import Response, jsonify


def json_error(status: int, message: str, details: list[str] | None = None) -> Response:
    body: dict[str, object] = {"error": message}
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    return response
