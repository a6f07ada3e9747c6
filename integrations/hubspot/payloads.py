"""HubSpot webhook bodies -> normalized events (the anti-corruption layer).

Two shapes arrive at the same endpoint:
- Webhooks API: a JSON array (< 100 items) of event objects. The type is in `subscriptionType`,
  or `eventType` in older samples. `eventId` is not unique, so the dedupe key is
  (portalId, subscriptionId, eventId, objectId, occurredAt, propertyName).
- Workflow "Send a webhook": one JSON object describing a contact (legacy contacts-v1 shape with
  `vid`/`portal-id`, or a v3-style object with `objectId`/`properties`). It becomes one
  `workflow.contact` event whose event id is derived from the body and whose time comes from the
  body, so HubSpot's retries of the same body deduplicate (only a body with neither
  lastmodifieddate nor createdate falls back to the arrival time).

The request path parses fully (to answer 400 precisely); the worker parses again when splitting.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson

MAX_ERRORS_SHOWN = 10
WORKFLOW_TYPE = "workflow.contact"


class PayloadError(ValueError):
    """The body is not a HubSpot webhook payload; `errors` says exactly why."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors[:MAX_ERRORS_SHOWN]
        more = len(errors) - len(self.errors)
        super().__init__("; ".join(self.errors) + (f"; and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class WebhookEvent:
    portal_id: int
    object_id: int
    subscription_type: str
    subscription_id: int
    event_id: int
    occurred_at_ms: int
    property_name: str
    property_value: str | None
    change_source: str | None
    attempt_number: int
    batch_index: int  # position in the stored raw body, which stays the record of truth
    raw: dict[str, Any]

    @property
    def dedupe_key(self) -> tuple[int, int, int, int, int, str]:
        return (
            self.portal_id,
            self.subscription_id,
            self.event_id,
            self.object_id,
            self.occurred_at_ms,
            self.property_name,
        )


@dataclass(frozen=True)
class Parsed:
    source: str  # "webhooks_api" | "workflow"
    events: list[WebhookEvent]
    count: int = -1  # number of events; set by `validate`, which builds no event objects

    @property
    def size(self) -> int:
        return self.count if self.count >= 0 else len(self.events)


MAX_ID = 2**63 - 1  # BIGINT: anything larger would fail later, in the worker, not here
MIN_OCCURRED_MS = 946_684_800_000  # 2000-01-01: HubSpot did not exist before; 0 is not a time
MAX_OCCURRED_MS = 4_102_444_800_000  # 2100-01-01: a timestamp past this is not a real event
MAX_ATTEMPT = 10_000  # HubSpot retries ~10 times; the column is a 32-bit INTEGER
# Column widths in sla_bot.db.schema.webhook_events. Key fields over them are refused (cutting
# them would merge distinct events); changeSource, a label outside the key, is cut to fit.
MAX_SUBSCRIPTION_TYPE = 64
MAX_PROPERTY_NAME = 255
MAX_CHANGE_SOURCE = 64
# JSON limits: a signed body must never crash the parser (RecursionError, ValueError on huge
# integers) or carry numbers no column can hold. HubSpot's events are flat objects.
MAX_JSON_DEPTH = 16
MAX_JSON_INT = 2**63 - 1


def _int(value: Any, limit: int = MAX_ID, low: int = 0) -> int | None:
    """An integer in [low, limit] (digit strings accepted), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if low <= value <= limit else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if low <= number <= limit else None
    return None


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _load(body: bytes) -> Any:
    # orjson: ~4x faster than json on a 100-event batch; strict JSON (no NaN), UTF-8 checked,
    # nesting capped at 1,024 (no RecursionError), integers past 64 bits read as floats
    # (refused below where a field needs an integer).
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg:
            raise PayloadError([f"body nests deeper than {MAX_JSON_DEPTH} levels"]) from None
        raise PayloadError(
            [f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from None
    if type(data) is list:
        # The common case, one event object of scalars each: checked here, cheaply.
        for item in data:
            if type(item) is not dict or not _flat(item):
                _check_json(data)
                break
    elif type(data) is dict:
        _check_json(data)
    return data


_SCALARS = (str, int, type(None), bool)


def _flat(item: dict[str, Any]) -> bool:
    for value in item.values():
        kind = type(value)
        if kind is int or kind is float:  # orjson reads integers past 64 bits as floats
            if not -MAX_JSON_INT <= value <= MAX_JSON_INT:
                return False
        elif kind not in _SCALARS:
            return False
    return True


def _check_json(data: Any) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and numbers no column can hold (iteratively)."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            children: Any = ((f"{path}.{key}", child) for key, child in value.items())
        elif isinstance(value, list):
            children = ((f"{path}[{i}]", child) for i, child in enumerate(value))
        else:
            if isinstance(value, int) and not isinstance(value, bool):
                if not -MAX_JSON_INT <= value <= MAX_JSON_INT:
                    raise PayloadError([f"{path[:80]}: integer outside the 64-bit range"])
            elif isinstance(value, float) and not -MAX_JSON_INT <= value <= MAX_JSON_INT:
                raise PayloadError([f"{path[:80]}: number outside the 64-bit range"])
            continue
        if depth > MAX_JSON_DEPTH:
            raise PayloadError([f"body nests deeper than {MAX_JSON_DEPTH} levels"])
        stack.extend((child, depth + 1, where) for where, child in children)


def _wrong_shape(data: Any) -> PayloadError:
    return PayloadError(
        [f"expected a JSON array of events or a workflow object, got {type(data).__name__}"]
    )


def validate(body: bytes, *, received_at: datetime, portal_hint: int | None = None) -> Parsed:
    """The request path's check: same rules as `parse`, without building event objects.

    Returns a Parsed whose `events` is empty for Webhooks-API arrays (only `count` is known).
    A batch of what HubSpot sends is checked in one C pass (`fast_event_count`); anything else
    takes the full check, which also says exactly what is wrong.
    """
    count = fast_event_count(body)
    if count:
        return Parsed("webhooks_api", [], count=count)
    data = _load(body)
    if isinstance(data, list):
        if not data:
            raise PayloadError(["empty event array"])
        errors = [e for i, item in enumerate(data) if (e := _check_event(i, item)) is not None]
        if errors:
            raise PayloadError(errors)
        return Parsed("webhooks_api", [], count=len(data))
    if isinstance(data, dict):
        return Parsed("workflow", [_parse_workflow(data, body, received_at, portal_hint)])
    raise _wrong_shape(data)


# The fast check: msgspec decodes a batch against a schema of HubSpot's event fields, in C,
# about 4x cheaper than orjson plus the Python checks below. It must never accept what the full
# check refuses (tests/test_payload_fast_path.py compares them): every key must be a known
# field holding a scalar, the key fields carry the same bounds as `_check_event`, and events in
# older shapes (eventType, primaryObjectId) or with any other field take the full check.
_Scalar = (
    str
    | bool
    | None
    | Annotated[int, msgspec.Meta(ge=-MAX_JSON_INT, le=MAX_JSON_INT)]
    # Bounds as floats: float(2**63 - 1) is 2**63, which the full check refuses.
    | Annotated[float, msgspec.Meta(gt=-(2.0**63), lt=2.0**63)]
)
_Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
_OptionalId = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)] | None


class _FastEvent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    subscriptionType: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SUBSCRIPTION_TYPE)]
    portalId: _Id
    objectId: _Id
    occurredAt: Annotated[int, msgspec.Meta(ge=MIN_OCCURRED_MS, le=MAX_OCCURRED_MS)]
    eventId: _OptionalId = None
    subscriptionId: _OptionalId = None
    attemptNumber: Annotated[int, msgspec.Meta(ge=0, le=MAX_ATTEMPT)] | None = None
    propertyName: Annotated[str, msgspec.Meta(max_length=MAX_PROPERTY_NAME)] | None = None
    changeSource: str | None = None
    propertyValue: _Scalar = None
    appId: _Scalar = None
    changeFlag: _Scalar = None
    sourceId: _Scalar = None
    objectTypeId: _Scalar = None
    isSensitive: _Scalar = None


_FAST_DECODER = msgspec.json.Decoder(list[_FastEvent])


def fast_event_count(body: bytes) -> int:
    """Number of events if `body` is a batch the full check would accept, else 0 (unknown)."""
    try:
        return len(_FAST_DECODER.decode(body))
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return 0


def parse(body: bytes, *, received_at: datetime, portal_hint: int | None = None) -> Parsed:
    """Parse and validate a webhook body into events; raise PayloadError listing what is wrong."""
    data = _load(body)
    if isinstance(data, list):
        return Parsed("webhooks_api", _parse_events(data))
    if isinstance(data, dict):
        return Parsed("workflow", [_parse_workflow(data, body, received_at, portal_hint)])
    raise _wrong_shape(data)


def _optional_ints_fit(item: dict[str, Any]) -> bool:
    for name in ("eventId", "subscriptionId"):
        value = item.get(name)
        if value is not None and not (type(value) is int and 0 <= value <= MAX_ID):
            return False
    attempt = item.get("attemptNumber")
    return attempt is None or (type(attempt) is int and 0 <= attempt <= MAX_ATTEMPT)


def _check_event(i: int, item: Any) -> str | None:
    """Why event `i` is unusable, or None. Shared by `validate` and `parse`."""
    # Fast path for what HubSpot actually sends (exact ints and a string type): this runs for
    # every event on the webhook request path, so it must cost about a microsecond.
    if type(item) is dict:
        kind = item.get("subscriptionType", item.get("eventType"))
        obj = item.get("objectId", item.get("primaryObjectId"))
        portal = item.get("portalId")
        occurred = item.get("occurredAt")
        prop = item.get("propertyName")
        source = item.get("changeSource")
        if (
            type(kind) is str
            and type(portal) is int
            and type(obj) is int
            and type(occurred) is int
            and 0 < len(kind) <= MAX_SUBSCRIPTION_TYPE
            and 0 < portal <= MAX_ID
            and 0 < obj <= MAX_ID
            and MIN_OCCURRED_MS <= occurred <= MAX_OCCURRED_MS
            and (prop is None or (type(prop) is str and len(prop) <= MAX_PROPERTY_NAME))
            and (source is None or type(source) is str)
            and _optional_ints_fit(item)
        ):
            return None
    if not isinstance(item, dict):
        return f"event {i}: expected an object, got {type(item).__name__}"
    kind = item.get("subscriptionType", item.get("eventType"))
    missing = []
    if not isinstance(kind, str) or not kind or len(kind) > MAX_SUBSCRIPTION_TYPE:
        missing.append("subscriptionType")
    if _int(item.get("portalId"), low=1) is None:
        missing.append("portalId")
    if _int(item.get("objectId", item.get("primaryObjectId")), low=1) is None:
        missing.append("objectId")
    if _int(item.get("occurredAt"), MAX_OCCURRED_MS, MIN_OCCURRED_MS) is None:
        missing.append("occurredAt")
    for name in ("eventId", "subscriptionId"):
        if item.get(name) is not None and _int(item.get(name)) is None:
            missing.append(name)
    if item.get("attemptNumber") is not None and _int(item["attemptNumber"], MAX_ATTEMPT) is None:
        missing.append("attemptNumber")
    prop = item.get("propertyName")
    if prop is not None and (not isinstance(prop, str) or len(prop) > MAX_PROPERTY_NAME):
        missing.append("propertyName")
    return f"event {i}: missing or invalid {', '.join(missing)}" if missing else None


def _parse_events(items: list[Any]) -> list[WebhookEvent]:
    if not items:
        raise PayloadError(["empty event array"])
    errors = [e for i, item in enumerate(items) if (e := _check_event(i, item)) is not None]
    if errors:
        raise PayloadError(errors)
    events = []
    for i, item in enumerate(items):
        source = _str_or_none(item.get("changeSource"))
        events.append(
            WebhookEvent(
                portal_id=_int(item["portalId"]),  # type: ignore[arg-type]
                object_id=_int(item.get("objectId", item.get("primaryObjectId"))),  # type: ignore[arg-type]
                subscription_type=item.get("subscriptionType", item.get("eventType")),
                subscription_id=_int(item.get("subscriptionId")) or 0,
                event_id=_int(item.get("eventId")) or 0,
                occurred_at_ms=_int(item["occurredAt"]),  # type: ignore[arg-type]
                property_name=item.get("propertyName") or "",
                property_value=_str_or_none(item.get("propertyValue")),
                # A label, not part of the key: cut to its column (the raw body keeps it whole).
                change_source=source[:MAX_CHANGE_SOURCE] if source is not None else None,
                attempt_number=_int(item.get("attemptNumber")) or 0,
                batch_index=i,
                raw=item,
            )
        )
    return events


def _epoch_ms(value: Any) -> int | None:
    """HubSpot timestamps: epoch ms (number or digits) or ISO 8601; None if neither."""
    number = _int(value, MAX_OCCURRED_MS, MIN_OCCURRED_MS)
    if number is not None or not isinstance(value, str) or value.isdigit():
        return number
    try:
        ms = int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, OverflowError):
        return None
    return ms if MIN_OCCURRED_MS <= ms <= MAX_OCCURRED_MS else None


def _workflow_property(data: dict[str, Any], name: str) -> Any:
    props = data.get("properties")
    if not isinstance(props, dict):
        return None
    value = props.get(name)
    if isinstance(value, dict):  # legacy contacts-v1: {"value": ..., "versions": [...]}
        return value.get("value")
    return value


def _parse_workflow(
    data: dict[str, Any], body: bytes, received_at: datetime, portal_hint: int | None
) -> WebhookEvent:
    obj = None
    for candidate in (
        data.get("vid"),
        data.get("canonical-vid"),
        data.get("objectId"),
        data.get("id"),
        _workflow_property(data, "hs_object_id"),
    ):
        obj = _int(candidate, low=1)
        if obj is not None:
            break
    portal = _int(data.get("portal-id", data.get("portalId")), low=1) or portal_hint or None
    errors = []
    if obj is None:
        errors.append("workflow payload: no contact id (vid, objectId, id or hs_object_id)")
    if portal is None:
        errors.append(
            "workflow payload: no portal id (portal-id or portalId in the body, "
            "or ?portalId= in the webhook URL)"
        )
    if errors:
        raise PayloadError(errors)
    # The event time is part of the dedupe key, so it must not change when HubSpot retries the
    # same body: the body's own lastmodifieddate, else its createdate (older than any later
    # change, so a late retry never overrides newer values), else the arrival time.
    occurred = _epoch_ms(_workflow_property(data, "lastmodifieddate"))
    if occurred is None:
        occurred = _epoch_ms(_workflow_property(data, "createdate"))
    if occurred is None:
        occurred = int(received_at.timestamp() * 1000)
    digest = int(hashlib.sha256(body).hexdigest()[:15], 16)
    return WebhookEvent(
        portal_id=portal,  # type: ignore[arg-type]
        object_id=obj,  # type: ignore[arg-type]
        subscription_type=WORKFLOW_TYPE,
        subscription_id=0,
        event_id=digest,
        occurred_at_ms=occurred,
        property_name="",
        property_value=None,
        change_source="WORKFLOW",
        attempt_number=0,
        batch_index=0,
        raw=data,
    )
