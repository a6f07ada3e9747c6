"""In-memory CRM behind :class:`integrations.hubspot.fake.FakeHubSpot` (objects, owners, search).

Handlers take the parsed request and return ``(status, json_body)``. The JSON shapes are the ones
HubSpot's v3 API sends, so ``hubspot-api-client`` deserialises them unchanged. Callers hold
``FakeCrm.lock``.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.hubspot import _fake_search as _search
from integrations.hubspot._fake_properties import PropertyStore
from integrations.hubspot._fake_search import sort_key

Json = Any
Reply = tuple[int, Json]

ENGAGEMENT_TO_CONTACT = {
    "tasks": 204,
    "notes": 202,
    "calls": 194,
    "emails": 198,
    "meetings": 200,
    "communications": 81,
}
CONTACT_TO_ENGAGEMENT = {
    "tasks": 203,
    "notes": 201,
    "calls": 193,
    "emails": 197,
    "meetings": 199,
    "communications": 82,
}
CONTACTED_KINDS = {"calls", "emails", "meetings", "communications"}
OBJECT_TYPES = {"contacts", *ENGAGEMENT_TO_CONTACT}
READ_ONLY = {"hs_object_id", "createdate", "lastmodifieddate", "hs_createdate", "num_notes"}
READ_ONLY |= {"hs_lastmodifieddate", "hubspot_owner_assigneddate", "num_contacted_notes"}
READ_ONLY |= {"notes_last_contacted", "notes_last_updated", "hs_sa_first_engagement_date"}
# "The date the current contact owner first engaged with the contact": cleared by an owner change.
FIRST_ENGAGEMENT = "hs_sa_first_engagement_date"
CHANNELS = {"WHATS_APP", "LINKEDIN_MESSAGE", "SMS"}


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: Any) -> datetime | None:
    """ISO-8601 (``Z`` allowed) or epoch-ms string/int -> aware UTC datetime; None passes."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def error(status: int, message: str, category: str, **extra: Any) -> Reply:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4())}
    return status, {**body, "category": category, **extra}


@dataclass
class StoredObject:
    id: str
    type: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    associations: list[tuple[str, str, int]] = field(default_factory=list)
    archived: bool = False

    def touch(self, at: datetime) -> None:
        self.updated_at = max(self.updated_at, at)
        key = "lastmodifieddate" if self.type == "contacts" else "hs_lastmodifieddate"
        self.properties[key] = iso(self.updated_at)

    def all_properties(self) -> dict[str, str | None]:
        return {"hs_object_id": self.id, **self.properties}

    def to_json(self, wanted: list[str] | None) -> Json:
        props = self.all_properties()
        if wanted is None:
            contact = self.type == "contacts"
            wanted = ["email", "firstname", "lastname"] if contact else list(props)
        always = ["hs_object_id", "createdate", "lastmodifieddate"]
        if self.type != "contacts":
            always = ["hs_object_id", "hs_createdate", "hs_lastmodifieddate"]
        selected = {name: props.get(name) for name in [*wanted, *always]}
        return {
            "id": self.id,
            "properties": selected,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": self.archived,
        }


def owner_json(owner: dict[str, Any]) -> Json:
    archived = owner["archived"]
    return {
        "id": owner["id"],
        "email": owner["email"],
        "type": "PERSON",
        "firstName": owner["first_name"],
        "lastName": owner["last_name"],
        "userId": None if archived else owner["user_id"],
        "userIdIncludingInactive": owner["user_id"],
        "createdAt": owner["created_at"],
        "updatedAt": owner["created_at"],
        "archived": archived,
        "teams": owner["teams"],
    }


class FakeCrm:
    def __init__(self, now: Any) -> None:
        self.lock = threading.RLock()
        self.now = now
        self.search_cap = 10_000
        self.search_lag = 0.0  # seconds before a new object is searchable
        self.portal_id = 62515  # answered by GET /account-info/v3/details
        self.reset()

    def reset(self) -> None:
        self.objects: dict[str, dict[str, StoredObject]] = {t: {} for t in OBJECT_TYPES}
        self.created_order: dict[str, list[str]] = {t: [] for t in OBJECT_TYPES}
        self.owners: dict[str, dict[str, Any]] = {}
        self.properties = PropertyStore()  # contact property definitions (properties API)
        self._next_id = 90_000_001

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    # -- objects ----------------------------------------------------------------------------

    def put(
        self, otype: str, oid: str, props: dict[str, Any], created: datetime, updated: datetime
    ) -> StoredObject:
        clean = {k: None if v is None else str(v) for k, v in props.items()}
        if otype == "contacts":
            self.properties.seen |= set(clean)  # the portal has what its contacts carry
        obj = StoredObject(oid, otype, clean, created, updated)
        obj.properties["createdate" if otype == "contacts" else "hs_createdate"] = iso(created)
        obj.touch(updated)
        self.objects[otype][oid] = obj
        return obj

    def get(self, otype: str, oid: str, query: dict[str, Any]) -> Reply:
        obj = self.objects.get(otype, {}).get(oid)
        if obj is None or obj.archived:
            return error(404, "resource not found", "OBJECT_NOT_FOUND")
        wanted = query.get("properties")
        return 200, obj.to_json(wanted.split(",") if wanted else None)

    def patch(self, otype: str, oid: str, body: Json) -> Reply:
        obj = self.objects.get(otype, {}).get(oid)
        if obj is None or obj.archived:
            return error(404, "resource not found", "OBJECT_NOT_FOUND")
        props = (body or {}).get("properties")
        if not isinstance(props, dict):
            return error(400, "Invalid input JSON: properties is required", "VALIDATION_ERROR")
        bad = sorted(set(props) & READ_ONLY)
        if bad:
            detail = f"{bad[0]} is a read only property; its value cannot be set."
            return error(400, f"Property values were not valid: {detail}", "VALIDATION_ERROR")
        invalid = self.properties.invalid_values(props) if otype == "contacts" else []
        if invalid:
            detail = json.dumps(invalid)
            return error(400, f"Property values were not valid: {detail}", "VALIDATION_ERROR")
        now = self.now()
        for name, value in props.items():
            obj.properties[name] = None if value is None else str(value)
            if name == "hubspot_owner_id":
                obj.properties["hubspot_owner_assigneddate"] = iso(now)
                obj.properties.pop(FIRST_ENGAGEMENT, None)  # the new owner has not engaged
        obj.touch(now)
        return 200, obj.to_json(list(props))

    def create(self, otype: str, body: Json) -> Reply:
        body = body or {}
        props = dict(body.get("properties") or {})
        if otype != "contacts":
            try:
                parse_iso(props.get("hs_timestamp") or "missing")
            except ValueError:
                message = "Property values were not valid: hs_timestamp must be a date-time"
                return error(400, message, "VALIDATION_ERROR")
        if otype == "communications" and (
            props.get("hs_communication_channel_type") not in CHANNELS
            or props.get("hs_communication_logged_from") != "CRM"
        ):
            return error(
                400,
                "Property values were not valid: channel type / logged_from",
                "VALIDATION_ERROR",
            )
        links: list[tuple[str, str, int]] = []
        for assoc in body.get("associations") or ():
            to_id = str((assoc.get("to") or {}).get("id"))
            for spec in assoc.get("types") or ():
                type_id = spec.get("associationTypeId")
                if (
                    ENGAGEMENT_TO_CONTACT.get(otype) != type_id
                    or spec.get("associationCategory") != "HUBSPOT_DEFINED"
                ):
                    return error(
                        400, f"invalid association type {type_id} for {otype}", "VALIDATION_ERROR"
                    )
                if to_id not in self.objects["contacts"]:
                    return error(
                        400, f"One or more associations are invalid: {to_id}", "VALIDATION_ERROR"
                    )
                links.append(("contacts", to_id, type_id))
        now = self.now()
        obj = self.put(otype, self.new_id(), props, now, now)
        self.created_order[otype].append(obj.id)
        obj.associations = links
        for _, contact_id, _ in links:
            self._roll_up(self.objects["contacts"][contact_id], otype, props, now)
        return 201, obj.to_json(None)

    def _roll_up(self, contact: StoredObject, otype: str, props: dict[str, Any], now: datetime):
        """Approximate HubSpot's activity roll-ups (synchronous here, delayed in HubSpot)."""
        p = contact.properties
        when = iso(parse_iso(props["hs_timestamp"]) or now)
        p["num_notes"] = str(int(p.get("num_notes") or 0) + 1)
        if otype in CONTACTED_KINDS:
            p["num_contacted_notes"] = str(int(p.get("num_contacted_notes") or 0) + 1)
            p["notes_last_contacted"] = max(p.get("notes_last_contacted") or "", when)
            owner = props.get("hubspot_owner_id")
            if owner and owner == p.get("hubspot_owner_id"):  # the current owner's first one
                first = p.get(FIRST_ENGAGEMENT)
                p[FIRST_ENGAGEMENT] = min(first, when) if first else when
        if otype in CONTACTED_KINDS or otype == "notes":
            p["notes_last_updated"] = max(p.get("notes_last_updated") or "", when)
        contact.touch(now)

    def batch_read(self, otype: str, body: Json) -> Reply:
        inputs = [str(i.get("id")) for i in (body or {}).get("inputs") or ()]
        if len(inputs) > 100:
            return error(400, "Batch input must contain at most 100 inputs", "VALIDATION_ERROR")
        if len(set(inputs)) != len(inputs):
            return error(400, "Duplicate IDs found in batch input", "VALIDATION_ERROR")
        id_prop = (body or {}).get("idProperty")
        wanted = (body or {}).get("properties") or None
        store = self.objects.get(otype, {})
        results, missing = [], []
        for key in inputs:
            if id_prop and id_prop != "hs_object_id":
                obj = next((o for o in store.values() if o.properties.get(id_prop) == key), None)
            else:
                obj = store.get(key)
            if obj is None or obj.archived:
                missing.append(key)
            else:
                results.append(obj.to_json(wanted))
        now = iso(self.now())
        reply: dict[str, Any] = {"status": "COMPLETE", "results": results}
        reply |= {"startedAt": now, "completedAt": now}
        if not missing:
            return 200, reply
        name = otype.rstrip("s").upper()
        message = f"Could not get some {name} objects, they may be deleted or not exist. "
        message += "Check that ids are valid."
        err = {"status": "error", "category": "OBJECT_NOT_FOUND", "message": message}
        return 207, {**reply, "numErrors": 1, "errors": [{**err, "context": {"ids": missing}}]}

    def search(self, otype: str, body: Json) -> Reply:
        body = body or {}
        problem = _search.validate(body, self.search_cap)
        if problem:
            return error(400, problem, "VALIDATION_ERROR")
        objects: Any = self.objects.get(otype, {}).values()
        if self.search_lag:
            indexed = self.now() - timedelta(seconds=self.search_lag)
            objects = [o for o in objects if o.created_at <= indexed]
        found = _search.run(objects, body, self.search_cap)
        wanted = body.get("properties") or None
        reply = {"total": found["total"], "results": [o.to_json(wanted) for o in found["hits"]]}
        if found["next_after"] is not None:
            after = str(found["next_after"])
            reply["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return 200, reply

    def associations(self, otype: str, oid: str, to_type: str) -> Reply:
        if oid not in self.objects.get(otype, {}):
            return error(404, "resource not found", "OBJECT_NOT_FOUND")
        results = []
        if otype == "contacts":
            for other in self.objects.get(to_type, {}).values():
                for link_type, link_id, _ in other.associations:
                    if link_type == "contacts" and link_id == oid:
                        type_id = CONTACT_TO_ENGAGEMENT[to_type]
                        results.append((other.id, type_id))
        else:
            results = [
                (i, t) for ty, i, t in self.objects[otype][oid].associations if ty == to_type
            ]
        return 200, {
            "results": [
                {
                    "toObjectId": int(i) if i.isdigit() else i,
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None}
                    ],
                }
                for i, t in results
            ]
        }

    # -- owners -----------------------------------------------------------------------------

    def owner(self, oid: str, query: dict[str, Any]) -> Reply:
        archived = query.get("archived", "false").lower() == "true"
        by_user = query.get("idProperty") == "userId"
        for owner in self.owners.values():
            key = str(owner["user_id"]) if by_user else owner["id"]
            if key == oid and owner["archived"] == archived:
                return 200, owner_json(owner)
        return error(404, f"Owner {oid} not found", "OBJECT_NOT_FOUND")

    def owner_page(self, query: dict[str, Any]) -> Reply:
        archived = query.get("archived", "false").lower() == "true"
        email = (query.get("email") or "").lower()
        limit, after = int(query.get("limit") or 100), int(query.get("after") or 0)
        found = [
            o
            for o in sorted(self.owners.values(), key=lambda o: sort_key(o["id"]))
            if o["archived"] == archived and (not email or (o["email"] or "").lower() == email)
        ]
        reply: dict[str, Any] = {"results": [owner_json(o) for o in found[after : after + limit]]}
        if after + limit < len(found):
            reply["paging"] = {"next": {"after": str(after + limit), "link": "?after="}}
        return 200, reply
