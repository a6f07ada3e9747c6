"""Idempotent creates of tasks, notes and logged touches.

A POST that fails *ambiguously* - read timeout, connection dropped after sending, 5xx - may have
created the object, and blindly re-sending it would duplicate a task or a logged call. So:

1. Each create carries the marker ``[sla-bot:<token>]`` at the end of its body property
   (``hs_task_body``, ``hs_note_body``, ``hs_call_body``, ``hs_email_text``, ``hs_meeting_body``,
   ``hs_communication_body``); ``token = "slabot" + sha256(idempotency_key)[:32]``.
2. An ambiguous failure is never re-sent inline: it is raised (``ambiguous``), and the caller -
   the outbox - tries again after ``INDEX_LAG`` seconds, first searching that object type for
   the token (``CONTAINS_TOKEN``, through the search rate limiter) and verifying the marker in
   the returned body. Found: its id is the result and nothing is re-sent. Not found: re-send.
   (Searching a moment after the failure cannot tell: HubSpot's index lags writes by seconds.)
3. A 429 or a failed connect means "not processed": re-sent directly, no search.
4. In-process memory (bounded LRU): a key that already produced an id returns that id without
   any request (double-clicked Slack buttons, re-run jobs); a key whose last call ended after an
   ambiguous failure is searched for *before* the next create with that key. Concurrent calls
   with the same key are serialised (striped locks), so the second one sees the first's id.

Known limits: an object whose create failed ambiguously and that is still not searchable after
``INDEX_LAG`` (HubSpot's index far behind) is created again. Memory is per process: two workers
creating with the same key at the same time are not deduplicated; the outbox's lease gives each
key a single owner at a time.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from integrations.hubspot import engagements as eng
from integrations.hubspot.errors import HubSpotError
from integrations.hubspot.ratelimit import RateLimiter
from integrations.hubspot.retry import Retrier

_STRIPES = 64  # per-key lock stripes
SearchFn = Callable[[str, Any, dict[str, Any]], Any]  # (operation, search api, request) -> page


class IdempotentCreator:
    def __init__(
        self,
        *,
        api: Callable[[str], Any],
        retrier: Retrier,
        limiter: RateLimiter,
        search: SearchFn,
        timeout: tuple[float, float],
        memory: int = 4096,
    ) -> None:
        self._api = api
        self._retrier = retrier
        self._limiter = limiter
        self._search = search
        self._timeout = timeout
        self._memory = memory
        self._lock = threading.Lock()
        self._created: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._unsure: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._key_locks = [threading.Lock() for _ in range(_STRIPES)]

    def create(
        self,
        spec: eng.ObjectSpec,
        contact_id: str,
        props: dict[str, str],
        token: str,
        fence: Callable[[], object] | None = None,
    ) -> str:
        """Create once per (object type, token); concurrent calls with one key are serialised.
        ``fence`` runs right before the request (see Retrier.call)."""
        key = (spec.object_type, token)
        with self._key_locks[hash(key) % _STRIPES]:
            return self._create(spec, key, contact_id, props, token, fence)

    def _create(
        self,
        spec: eng.ObjectSpec,
        key: tuple[str, str],
        contact_id: str,
        props: dict[str, str],
        token: str,
        fence: Callable[[], object] | None,
    ) -> str:
        with self._lock:
            known, unsure = self._created.get(key), key in self._unsure
        if known is not None:
            return known
        if unsure and (existing := self.find(spec.object_type, token)):
            return self._succeeded(key, existing)

        body = _create_input(spec, contact_id, props)
        api = self._api(f"{spec.kind}.basic")

        def attempt() -> str:
            created = api.create(
                simple_public_object_input_for_create=body, _request_timeout=self._timeout
            )
            return str(created.id)

        try:
            new_id = self._retrier.call(
                f"create {spec.object_type}",
                attempt,
                limiter=self._limiter,
                resend_ambiguous=False,
                fence=fence,
            )
        except HubSpotError as err:
            if err.ambiguous:
                self._remember(self._unsure, key, None)
            raise
        return self._succeeded(key, new_id)

    def find(self, object_type: str, token: str) -> str | None:
        """Id of the oldest ``object_type`` object whose body carries ``token``, if any."""
        spec = eng.SPECS[object_type]
        token_filter = {
            "propertyName": spec.body_property,
            "operator": "CONTAINS_TOKEN",
            "value": token,
        }
        request = {
            "filterGroups": [{"filters": [token_filter]}],
            "properties": [spec.body_property],
            "limit": 10,
        }
        resp = self._search(
            f"find {object_type} by idempotency token", self._api(f"{spec.kind}.search"), request
        )
        ids = [
            str(r.id)
            for r in resp.results or ()
            if eng.has_marker((r.properties or {}).get(spec.body_property), token)
        ]
        ids.sort(key=lambda i: (len(i), i))  # numeric ids: oldest first
        return ids[0] if ids else None

    def _succeeded(self, key: tuple[str, str], object_id: str) -> str:
        with self._lock:
            self._unsure.pop(key, None)
        self._remember(self._created, key, object_id)
        return object_id

    def _remember(self, store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            store[key] = value
            store.move_to_end(key)
            while len(store) > self._memory:
                store.popitem(last=False)


def _create_input(spec: eng.ObjectSpec, contact_id: str, props: dict[str, str]) -> Any:
    """``SimplePublicObjectInputForCreate`` with one HUBSPOT_DEFINED association to the contact."""
    models = importlib.import_module(f"hubspot.crm.objects.{spec.object_type}")
    association = models.PublicAssociationsForObject(
        to=models.PublicObjectId(id=str(contact_id)),
        types=[
            models.AssociationSpec(
                association_category="HUBSPOT_DEFINED",
                association_type_id=spec.association_type_id,
            )
        ],
    )
    return models.SimplePublicObjectInputForCreate(properties=props, associations=[association])
