"""Search semantics of the fake HubSpot: filter evaluation, ordering, validation and paging."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

_NUM = re.compile(r"^-?\d+(\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS, MAX_LIMIT = 5, 6, 18, 200


class Searchable(Protocol):
    id: str
    properties: dict[str, str | None]
    archived: bool

    def all_properties(self) -> dict[str, str | None]: ...


def sort_key(value: str | None) -> tuple[int, Any]:
    """Comparable key: numbers and datetimes by value (ms), other text case-insensitively."""
    if value is None:
        return (2, "")
    text = str(value)
    if _NUM.match(text):
        return (0, float(text))
    if _DATE.match(text):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return (0, when.timestamp() * 1000)
        except ValueError:
            pass
    return (1, text.lower())


def matches(props: dict[str, str | None], flt: dict[str, Any]) -> bool:
    op, value = flt.get("operator"), props.get(flt.get("propertyName", ""))
    if op == "HAS_PROPERTY":
        return value not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return value in (None, "")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        tokens = re.findall(r"[a-z0-9]+", (value or "").lower())
        pattern = str(flt.get("value", "")).lower()
        hit = any(fnmatch.fnmatchcase(t, pattern) for t in tokens)
        return hit if op == "CONTAINS_TOKEN" else not hit
    if op in ("IN", "NOT_IN"):
        inside = sort_key(value) in {sort_key(v) for v in flt.get("values") or ()}
        return inside if op == "IN" else not inside
    if value is None:
        return op == "NEQ"
    key = sort_key(value)
    if op == "BETWEEN":
        return sort_key(flt.get("value")) <= key <= sort_key(flt.get("highValue"))
    other = sort_key(flt.get("value"))
    return {
        "EQ": key == other,
        "NEQ": key != other,
        "LT": key < other,
        "LTE": key <= other,
        "GT": key > other,
        "GTE": key >= other,
    }.get(op, False)


def _sort_spec(spec: Any) -> tuple[str, bool]:
    """(property, descending) from ``{"propertyName", "direction"}`` or ``"prop"``/``"-prop"``."""
    if isinstance(spec, str):
        return spec.lstrip("-"), spec.startswith("-")
    return str(spec.get("propertyName", "")), spec.get("direction") == "DESCENDING"


def validate(body: dict[str, Any], cap: int) -> str | None:
    """HubSpot's 400 message for an invalid request body, or None."""
    groups = body.get("filterGroups") or []
    sizes = [len(g.get("filters") or ()) for g in groups]
    if (
        len(groups) > MAX_GROUPS
        or sum(sizes) > MAX_FILTERS
        or max(sizes, default=0) > MAX_FILTERS_PER_GROUP
    ):
        return "Too many filters or filter groups (max 5 groups x 6 filters, 18 in total)"
    if int(body.get("limit") or 10) > MAX_LIMIT:
        return f"limit must be at most {MAX_LIMIT}"
    after = int(body.get("after") or 0)
    if after >= cap:
        return f"Cannot page beyond {cap} results (after={after})"
    return None


def run(objects: Iterable[Searchable], body: dict[str, Any], cap: int) -> dict[str, Any]:
    """Matching objects for a *validated* body: ``{"total", "hits", "next_after"}``."""
    groups = body.get("filterGroups") or []
    query = str(body.get("query") or "").lower()

    def selected(o: Searchable) -> bool:
        props = o.all_properties()
        if groups and not any(
            all(matches(props, f) for f in g.get("filters") or ()) for g in groups
        ):
            return False
        return not query or any(query in (v or "").lower() for v in o.properties.values())

    hits = sorted(
        (o for o in objects if not o.archived and selected(o)), key=lambda o: sort_key(o.id)
    )
    for spec in (body.get("sorts") or [])[:1]:  # HubSpot applies one sort
        name, descending = _sort_spec(spec)
        hits.sort(key=lambda o: sort_key(o.all_properties().get(name)), reverse=descending)
    limit, after = int(body.get("limit") or 10), int(body.get("after") or 0)
    end = min(after + limit, cap, len(hits))
    return {
        "total": len(hits),
        "hits": hits[after:end],
        "next_after": end if end < len(hits) else None,
    }
