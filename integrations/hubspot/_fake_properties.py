"""The CRM properties API of the fake HubSpot: property groups, property definitions, and the
validation HubSpot applies to property values on writes.

As HubSpot does: creating what exists is a 409 (`OBJECT_ALREADY_EXISTS`), a property needs an
existing group, a valid name and a type/fieldType pair HubSpot accepts, an enumeration needs
options; writing a property the portal does not have is a 400 (`PROPERTY_DOESNT_EXIST`), and a
value outside an enumeration's options, or a non-number for a number, is a 400
(`INVALID_OPTION` / `INVALID_INTEGER`...). The portal "has" HubSpot's default contact
properties, the ones created through this API, and any a seeded contact carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Json = Any
Reply = tuple[int, Json]

NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
FIELD_TYPES = {
    "string": {"text", "textarea", "phonenumber", "html", "file"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
}
DEFAULT_CONTACT_PROPERTIES = {
    "email", "firstname", "lastname", "phone", "mobilephone", "company", "website", "jobtitle",
    "city", "state", "country", "zip", "address", "lifecyclestage", "hs_lead_status",
    "hubspot_owner_id", "hubspot_owner_assigneddate", "hs_analytics_source", "hs_latest_source",
    "recent_conversion_event_name", "first_conversion_event_name", "createdate",
    "lastmodifieddate", "hs_object_id", "num_contacted_notes", "notes_last_contacted",
    "notes_last_updated", "notes_next_activity_date", "num_notes", "hs_email_domain",
    "engagements_last_meeting_booked", "hs_sa_first_engagement_date", "hubspot_team_id",
}  # fmt: skip


def _error(status: int, message: str, category: str, **extra: Any) -> Reply:
    import uuid

    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4())}
    return status, {**body, "category": category, **extra}


@dataclass
class Definition:
    body: dict[str, Any]
    created_at: str
    updated_at: str

    def to_json(self) -> Json:
        b = self.body
        return {
            "name": b["name"],
            "label": b.get("label", b["name"]),
            "type": b["type"],
            "fieldType": b["fieldType"],
            "description": b.get("description", ""),
            "groupName": b["groupName"],
            "options": [
                {
                    "label": o.get("label", o.get("value")),
                    "value": o.get("value"),
                    "displayOrder": o.get("displayOrder", i),
                    "hidden": bool(o.get("hidden", False)),
                }
                for i, o in enumerate(b.get("options") or [])
            ],
            "displayOrder": b.get("displayOrder", -1),
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": bool(b.get("hasUniqueValue", False)),
            "hidden": bool(b.get("hidden", False)),
            "hubspotDefined": False,
            "formField": bool(b.get("formField", False)),
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": False,
                "readOnlyValue": False,
            },
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
        }


@dataclass
class PropertyStore:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[str, Definition] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # properties seeded contacts carry

    # -- groups -----------------------------------------------------------------------------------

    def get_group(self, name: str) -> Reply:
        group = self.groups.get(name)
        if group is None:
            return _error(404, f"Unable to find property group {name}", "OBJECT_NOT_FOUND")
        return 200, group

    def create_group(self, body: Json) -> Reply:
        body = body or {}
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not NAME.match(name) or not label:
            return _error(400, "Invalid input: name and label are required", "VALIDATION_ERROR")
        if name in self.groups:
            message = f"A property group with the name '{name}' already exists."
            return _error(409, message, "OBJECT_ALREADY_EXISTS")
        group = {
            "name": name,
            "label": label,
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        self.groups[name] = group
        return 201, group

    # -- properties -------------------------------------------------------------------------------

    def get(self, name: str) -> Reply:
        found = self.definitions.get(name)
        if found is None:
            return _error(404, f"Unable to find property {name}", "OBJECT_NOT_FOUND")
        return 200, found.to_json()

    def all(self) -> Reply:
        return 200, {"results": [d.to_json() for d in self.definitions.values()]}

    def create(self, body: Json, now: datetime) -> Reply:
        body = dict(body or {})
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            return _error(400, f"Property name {name!r} is not valid", "VALIDATION_ERROR")
        if name in self.definitions or name in DEFAULT_CONTACT_PROPERTIES:
            message = f"Property named '{name}' already exists."
            return _error(409, message, "OBJECT_ALREADY_EXISTS")
        problem = self._check(body)
        if problem:
            return _error(400, problem, "VALIDATION_ERROR")
        stamp = now.isoformat()
        self.definitions[name] = Definition(body, stamp, stamp)
        return 201, self.definitions[name].to_json()

    def update(self, name: str, changes: Json, now: datetime) -> Reply:
        found = self.definitions.get(name)
        if found is None:
            return _error(404, f"Unable to find property {name}", "OBJECT_NOT_FOUND")
        merged = {**found.body, **{k: v for k, v in (changes or {}).items() if v is not None}}
        problem = self._check(merged)
        if problem:
            return _error(400, problem, "VALIDATION_ERROR")
        found.body, found.updated_at = merged, now.isoformat()
        return 200, found.to_json()

    def _check(self, body: dict[str, Any]) -> str | None:
        kind, field_type = body.get("type"), body.get("fieldType")
        if kind not in FIELD_TYPES:
            return f"type {kind!r} is not one of {', '.join(sorted(FIELD_TYPES))}"
        if field_type not in FIELD_TYPES[kind]:
            return f"fieldType {field_type!r} is not valid for type {kind}"
        if (
            body.get("groupName") not in self.groups
            and body.get("groupName") != "contactinformation"
        ):
            return f"property group {body.get('groupName')!r} does not exist"
        if kind == "enumeration" and not body.get("options"):
            return "an enumeration property needs options"
        return None

    # -- values -----------------------------------------------------------------------------------

    def invalid_values(self, props: dict[str, Any]) -> list[dict[str, Any]]:
        """HubSpot's per-property errors for a write (empty: all valid)."""
        errors = []
        for name, value in props.items():
            known = name in DEFAULT_CONTACT_PROPERTIES or name in self.seen
            definition = self.definitions.get(name)
            if definition is None and not known:
                errors.append(
                    {
                        "isValid": False,
                        "message": f'Property "{name}" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST",
                        "name": name,
                    }
                )
                continue
            if definition is None or value in (None, ""):
                continue
            problem = _value_problem(definition.body, str(value))
            if problem is not None:
                errors.append({"isValid": False, "name": name, **problem})
        return errors


def _value_problem(body: dict[str, Any], value: str) -> dict[str, str] | None:
    kind = body["type"]
    if kind == "enumeration":
        options = {o.get("value") for o in body.get("options") or []}
        if value not in options:
            return {
                "message": f"{value} was not one of the allowed options: {sorted(options)}",
                "error": "INVALID_OPTION",
            }
    elif kind == "number":
        try:
            float(value)
        except ValueError:
            return {"message": f"{value} is not a valid number", "error": "INVALID_INTEGER"}
    elif kind in ("date", "datetime") and not value.isdigit():
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return {"message": f"{value} is not a valid date", "error": "INVALID_DATE"}
    return None
