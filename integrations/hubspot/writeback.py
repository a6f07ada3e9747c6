"""The outbox deliverer for HubSpot: contact updates, tasks, notes and logged touches.

The engine decides a write (an outbox row, channel ``"hubspot"``); this module only performs it.
Payloads (one ``op`` per row)::

    {"op": "update_contact", "contact_id": "901", "properties": {...}}
    {"op": "create_task", "contact_id", "subject", "body", "owner_id", "due": ISO}
    {"op": "create_note", "contact_id", "body", "owner_id", "at": ISO}
    {"op": "create_engagement", "contact_id", "kind", "outcome", "note", "owner_id", "at": ISO}

Exactly-once creates: the row's ``idempotency_key`` becomes the HubSpot idempotency marker (see
:mod:`integrations.hubspot.idempotency`). Every request is fenced by the row's lease (sent only
while this worker's claim holds, checked after the rate limiter's wait). Right before a create
goes out, the fence records ``{"attempt": n, "sending_at": t}``; a failed attempt records what it
might have done (``{"attempt": n, "maybe_created": bool}``). Before re-sending a create, the
marker is searched for unless the previous attempt is known to have had no effect - and never
sooner than ``INDEX_LAG`` after that attempt was sending (a worker that crashed mid-create is
taken over within seconds, before HubSpot's search index shows what it created). The client
never re-sends an ambiguous create inline: it goes through this delayed path.

Errors: transient HubSpot errors are retried by the outbox (``retry_after`` honoured; ambiguous
creates wait at least ``INDEX_LAG`` so the search index can see what they may have created; 401
and daily-limit 429 wait long, since an operator or the next day has to fix them); any other 4xx
and malformed payloads fail the row for good with HubSpot's message and correlation id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.hubspot import engagements as eng
from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.errors import HubSpotError
from sla_bot.outbox import DeliveryError, LeaseLost, OutboxItem

CHANNEL = "hubspot"
INDEX_LAG = 10.0  # seconds before re-checking an ambiguous create through search
UNAUTHORIZED_RETRY = 300.0  # a revoked/rotated token: give the operator time, do not drop rows
DAILY_LIMIT_RETRY = 3600.0

ClientFor = Callable[[int], HubSpotClient]
TOUCH_OBJECT_TYPES = {  # where engagements.touch_properties files each kind
    "call": eng.CALL.object_type,
    "voicemail": eng.CALL.object_type,
    "email": eng.EMAIL.object_type,
    "meeting": eng.MEETING.object_type,
    "linkedin": eng.COMMUNICATION.object_type,
}


class PayloadInvalid(ValueError):
    """The row cannot be delivered as written; retrying will not help."""


class SinglePortal:
    """Today's deployment: one token, one portal. Refuses rows for any other portal.

    The portal id comes from ``HUBSPOT_PORTAL_ID`` or is discovered once from the token, so a
    token for portal A can never write into rows decided for portal B.
    """

    def __init__(self, client: HubSpotClient, portal_id: int | None = None) -> None:
        self.client = client
        self._portal_id = portal_id
        self._lock = threading.Lock()

    @property
    def portal_id(self) -> int:
        """The token's portal; discovered on first use (raises HubSpotError if that fails)."""
        with self._lock:
            if self._portal_id is None:
                self._portal_id = self.client.get_portal_id()
            return self._portal_id

    def __call__(self, portal_id: int) -> HubSpotClient:
        if portal_id != self.portal_id:
            raise LookupError(
                f"no HubSpot token for portal {portal_id} (the token is for portal "
                f"{self.portal_id})"
            )
        return self.client


def _client_for(
    clients: HubSpotClient | SinglePortal | Mapping[int, HubSpotClient] | ClientFor,
) -> ClientFor:
    if isinstance(clients, HubSpotClient):
        return SinglePortal(clients)
    if isinstance(clients, Mapping):
        table = dict(clients)

        def lookup(portal_id: int) -> HubSpotClient:
            try:
                return table[portal_id]
            except KeyError:
                raise LookupError(f"no HubSpot token for portal {portal_id}") from None

        return lookup
    return clients


class HubSpotWriter:
    """Delivers ``channel == "hubspot"`` outbox rows (see the module doc for payloads).

    ``clients``: one :class:`HubSpotClient` (checked against its portal), a
    :class:`SinglePortal`, a ``{portal_id: client}`` mapping, or a callable ``portal_id ->
    client`` raising ``LookupError`` for unknown portals - the hook for per-portal tokens.
    """

    channel = CHANNEL

    def __init__(
        self, clients: HubSpotClient | SinglePortal | Mapping[int, HubSpotClient] | ClientFor
    ) -> None:
        self._client_for = _client_for(clients)

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        op = item.payload.get("op") if isinstance(item.payload, dict) else None
        handler = _OPS.get(op) if isinstance(op, str) else None
        if handler is None:
            known = ", ".join(sorted(_OPS))
            raise DeliveryError(f"unknown HubSpot op {op!r} (expected {known})", permanent=True)
        create = op != "update_contact"
        try:
            client = self._client_for(item.portal_id)
        except LookupError as exc:  # no client: permanent, unless paused/undiscovered
            retry = getattr(exc, "retry_after", None)
            raise DeliveryError(str(exc), permanent=retry is None, retry_after=retry) from exc
        except HubSpotError as err:  # discovering the token's portal failed; nothing was sent
            raise _delivery_error(err, item, create=create, sent=False) from err
        try:
            return handler(client, item)
        except LeaseLost:
            raise
        except PayloadInvalid as exc:
            raise DeliveryError(f"malformed {op} payload: {exc}", permanent=True) from exc
        except HubSpotError as err:
            raise _delivery_error(err, item, create=create, sent=True) from err


def _delivery_error(
    err: HubSpotError, item: OutboxItem, *, create: bool, sent: bool
) -> DeliveryError:
    """Outbox error for a HubSpot failure, recording whether the object may now exist."""
    maybe = create and ((sent and err.ambiguous) or _previous_maybe_created(item))
    result = {"attempt": item.attempts, "maybe_created": maybe}
    if not err.transient and err.status != 401:
        return DeliveryError(str(err), permanent=True, result=result)
    retry_after = err.retry_after
    if err.status == 401:
        retry_after = max(retry_after or 0.0, UNAUTHORIZED_RETRY)
    elif err.status == 429 and (err.policy_name or "").upper() == "DAILY":
        retry_after = max(retry_after or 0.0, DAILY_LIMIT_RETRY)
    elif maybe:
        retry_after = max(retry_after or 0.0, INDEX_LAG)
    return DeliveryError(str(err), permanent=False, retry_after=retry_after, result=result)


def _previous_maybe_created(item: OutboxItem) -> bool:
    """Might an earlier attempt have created the object? Only a recorded clean failure says no."""
    if item.attempts <= 1:
        return False
    last = item.result or {}
    return last.get("attempt") != item.attempts - 1 or bool(last.get("maybe_created", True))


# -- payload parsing --------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise PayloadInvalid(f"{name} must be a non-empty string")
    return value


def _id(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise PayloadInvalid(f"{name} is required")
        return None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isdigit():
        raise PayloadInvalid(f"{name} must be a numeric HubSpot id, got {value!r}")
    return text


def _when(payload: Mapping[str, Any], name: str) -> datetime:
    value = payload.get(name)
    if not isinstance(value, str):
        raise PayloadInvalid(f"{name} must be an ISO-8601 timestamp")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadInvalid(f"{name} is not an ISO-8601 timestamp: {value!r}") from None
    if at.tzinfo is None:
        raise PayloadInvalid(f"{name} needs a timezone: {value!r}")
    return at.astimezone(UTC)


def _choice(payload: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = payload.get(name)
    if value not in allowed:
        raise PayloadInvalid(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


# -- operations ---------------------------------------------------------------------------------


def _created(
    client: HubSpotClient,
    item: OutboxItem,
    object_type: str,
    create: Callable[[Callable[[], object]], str],
) -> dict[str, Any]:
    """Run ``create`` (given its fence) unless an earlier attempt may have created the object."""
    if _previous_maybe_created(item):
        sending = (item.result or {}).get("sending_at")
        if isinstance(sending, int | float):
            wait = sending + INDEX_LAG - item.now().timestamp()
            if wait > 0:  # the search index may not show it yet: look later, do not re-send
                raise DeliveryError(
                    "an earlier attempt may have created it; searching once HubSpot indexed it",
                    permanent=False,
                    retry_after=wait,
                )
        token = eng.idempotency_token(item.idempotency_key)
        found = client.find_by_idempotency_token(object_type, token)
        if found is not None:
            return {"object_id": found, "object_type": object_type, "recovered": True}

    def fence() -> object:
        return item.fence({"attempt": item.attempts, "sending_at": item.now().timestamp()})

    return {"object_id": create(fence), "object_type": object_type}


def _update_contact(client: HubSpotClient, item: OutboxItem) -> dict[str, Any]:
    p = item.payload
    contact_id = _id(p, "contact_id")
    props = p.get("properties")
    if not isinstance(props, dict) or not props:
        raise PayloadInvalid("properties must be a non-empty object")
    bad = [k for k, v in props.items() if not isinstance(k, str) or isinstance(v, dict | list)]
    if bad:
        raise PayloadInvalid(f"property values must be scalars: {', '.join(map(str, bad))}")
    # HubSpot spells booleans "true"/"false"; str(True) would be "True".
    values = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in props.items()}
    expected = p.get("unless_changed")
    if isinstance(expected, dict) and expected:
        # Only if HubSpot still holds what the decision saw (e.g. an automatic reassignment
        # must not overwrite an owner a person chose meanwhile).
        contact = client.get_contact(contact_id or "", sorted(expected))
        now = {k: (contact.get(k) if contact is not None else None) for k in expected}
        changed = {k: v for k, v in now.items() if (v or None) != (expected[k] or None)}
        if changed:
            return {"updated": False, "contact_id": contact_id, "changed_meanwhile": changed}
    client.update_contact(contact_id or "", values, fence=item.fence)
    return {"updated": True, "contact_id": contact_id}


def _create_task(client: HubSpotClient, item: OutboxItem) -> dict[str, Any]:
    p = item.payload
    contact_id, owner = _id(p, "contact_id") or "", _id(p, "owner_id", required=False)
    subject, body, due = _text(p, "subject"), _text(p, "body", required=False), _when(p, "due")
    key = item.idempotency_key
    return _created(
        client,
        item,
        eng.TASK.object_type,
        lambda fence: client.create_task(
            contact_id,
            subject=subject,
            body=body,
            owner_id=owner,
            due=due,
            idempotency_key=key,
            fence=fence,
        ),
    )


def _create_note(client: HubSpotClient, item: OutboxItem) -> dict[str, Any]:
    p = item.payload
    contact_id, owner = _id(p, "contact_id") or "", _id(p, "owner_id", required=False)
    body, at = _text(p, "body"), _when(p, "at")
    key = item.idempotency_key
    return _created(
        client,
        item,
        eng.NOTE.object_type,
        lambda fence: client.create_note(
            contact_id, body=body, owner_id=owner, at=at, idempotency_key=key, fence=fence
        ),
    )


def _create_engagement(client: HubSpotClient, item: OutboxItem) -> dict[str, Any]:
    p = item.payload
    contact_id, owner = _id(p, "contact_id") or "", _id(p, "owner_id", required=False)
    kind = _choice(p, "kind", eng.TOUCH_KINDS)
    outcome = _choice(p, "outcome", eng.TOUCH_OUTCOMES)
    note, at = _text(p, "note", required=False), _when(p, "at")
    key = item.idempotency_key
    return _created(
        client,
        item,
        TOUCH_OBJECT_TYPES[kind],
        lambda fence: client.create_engagement(
            contact_id,
            kind=kind,  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
            note=note,
            owner_id=owner,
            at=at,
            idempotency_key=key,
            fence=fence,
        ),
    )


_OPS: dict[str, Callable[[HubSpotClient, OutboxItem], dict[str, Any]]] = {
    "update_contact": _update_contact,
    "create_task": _create_task,
    "create_note": _create_note,
    "create_engagement": _create_engagement,
}
