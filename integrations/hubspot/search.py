"""Iterating "contacts modified in [since, until)" past the search API's 10,000-result cap.

Strategy - **restart from the last seen ``lastmodifieddate`` on every page** (keyset paging),
never HubSpot's offset cursor ``after``:

1. Query ``lastmodifieddate >= cursor AND lastmodifieddate < until``, sorted ascending, ``limit``
   = page size (≤ 200). Yield every hit not already yielded *at the cursor timestamp*.
2. Move the cursor to the last hit's ``lastmodifieddate`` and remember the ids yielded at exactly
   that millisecond (they come back at the head of the next page and are skipped).
3. Stop when HubSpot reports no further page.

Why not ``after`` plus a restart near 10,000: ``after`` is an *offset*. When a contact in the
window is modified while we page (its ``lastmodifieddate`` jumps past ``until`` or later in the
order), every later hit shifts one slot left and one is silently skipped. Keyset paging cannot
skip: hits only move forward in time, so an unseen hit that moves is met later in this iteration
or (past ``until``) in the next poll. Each query starts at offset 0, so the 10,000 cap is never
reached, whatever the window holds. Cost: the few hits sharing the cursor millisecond are
re-fetched once per page.

Degenerate case: a whole page of hits sharing one millisecond (bulk import) would stall the
cursor. Then we walk that millisecond with ``lastmodifieddate EQ t`` sorted by ``hs_object_id``
and keyed on ``hs_object_id GT last``, and continue with ``lastmodifieddate > t``.

Caveats: the search index lags writes by a few seconds, so callers should poll with ``until``
a little in the past and overlap windows slightly; a contact can be yielded more than once
(re-modified during the walk), so consumers must be idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integrations.hubspot.errors import PermanentHubSpotError
from integrations.hubspot.models import Contact, epoch_ms

MODIFIED = "lastmodifieddate"
CREATED = "createdate"
OBJECT_ID = "hs_object_id"


@dataclass(frozen=True)
class SearchPage:
    results: Sequence[Contact]
    has_more: bool
    total: int | None = None


# fetch(filters, sort_property, limit) -> one page, sorted ascending on sort_property
FetchPage = Callable[[list[dict[str, Any]], str, int], SearchPage]


def lastmodified_ms(contact: Contact) -> int:
    """The contact's ``lastmodifieddate`` in epoch ms (ISO or ms string), else ``updated_at``."""
    return _date_ms(contact, MODIFIED)


def created_ms(contact: Contact) -> int:
    """The contact's ``createdate`` in epoch ms."""
    return _date_ms(contact, CREATED)


def _date_ms(contact: Contact, prop: str) -> int:
    raw = contact.properties.get(prop)
    if raw:
        if raw.isdigit():
            return int(raw)
        return epoch_ms(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    fallback = contact.updated_at if prop == MODIFIED else contact.created_at
    if fallback is None:
        raise PermanentHubSpotError(f"contact {contact.id} has no {prop}")
    return epoch_ms(fallback)


def _filter(prop: str, op: str, value: int | str) -> dict[str, Any]:
    return {"propertyName": prop, "operator": op, "value": str(value)}


def iter_modified(
    fetch: FetchPage,
    since_ms: int,
    until_ms: int,
    *,
    page_size: int,
    modified_ms: Callable[[Contact], int],
    prop: str = MODIFIED,
) -> Iterator[Contact]:
    """Yield every contact with since_ms <= `prop` (lastmodifieddate) < until_ms (see module
    doc); `prop` may be another date that only moves forward, e.g. createdate."""
    cursor, op = since_ms, "GTE"
    seen: set[str] = set()  # ids already yielded whose lastmodifieddate == cursor
    while cursor < until_ms:
        page = fetch([_filter(prop, op, cursor), _filter(prop, "LT", until_ms)], prop, page_size)
        fresh = 0
        for contact in page.results:
            ms = modified_ms(contact)
            if ms == cursor and contact.id in seen:
                continue
            fresh += 1
            yield contact
            if ms != cursor:
                cursor, op, seen = ms, "GTE", set()
            seen.add(contact.id)
        if not page.has_more or not page.results:
            return
        if fresh == 0:
            # A full page of hits at `cursor`, all seen: walk that millisecond by object id.
            yield from _walk_millisecond(fetch, cursor, seen, page_size, prop)
            op, seen = "GT", set()


def _walk_millisecond(
    fetch: FetchPage, at_ms: int, seen: set[str], page_size: int, prop: str = MODIFIED
) -> Iterator[Contact]:
    last_id: str | None = None
    while True:
        filters = [_filter(prop, "EQ", at_ms)]
        if last_id is not None:
            filters.append(_filter(OBJECT_ID, "GT", last_id))
        page = fetch(filters, OBJECT_ID, page_size)
        for contact in page.results:
            last_id = contact.id
            if contact.id not in seen:
                seen.add(contact.id)
                yield contact
        if not page.has_more or not page.results:
            return
