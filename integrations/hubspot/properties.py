"""`sla-bot hubspot setup`: create the outcome property group and properties in a portal.

Idempotent: what exists and matches is left alone, a label, description or missing option is
updated, and a property that exists with another type is reported (changing a type could lose
the portal's data, so a person decides). Runs against one client, so it works per portal.
Needs the scope `crm.schemas.contacts.write` (and `crm.schemas.contacts.read`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.errors import PermanentHubSpotError
from sla_bot.engine.outcome_properties import GROUP, GROUP_LABEL, PROPERTIES, PropertySpec

OBJECT_TYPE = "contacts"
SCOPE = "crm.schemas.contacts.write"


class SetupError(Exception):
    """The portal has something setup must not overwrite; the message says what to do."""


@dataclass(frozen=True)
class Done:
    kind: str  # group | property
    name: str
    result: str  # created | exists | updated


def _already(err: PermanentHubSpotError) -> bool:
    return err.status == 409


def _options(found: dict[str, Any]) -> dict[str, str]:
    return {o.get("value"): o.get("label") for o in found.get("options") or []}


def _changes(spec: PropertySpec, found: dict[str, Any]) -> dict[str, Any]:
    """What must change for `found` to say what `spec` says (their extra options are kept)."""
    want = spec.definition()
    changes = {
        k: want[k] for k in ("label", "description", "groupName") if found.get(k) != want.get(k)
    }
    if spec.options:
        have = _options(found)
        if any(have.get(value) != label for value, label in spec.options):
            ours = {o["value"] for o in want["options"]}
            theirs = [o for o in found.get("options") or [] if o.get("value") not in ours]
            changes["options"] = [
                *want["options"],
                *(
                    {
                        "value": o.get("value"),
                        "label": o.get("label"),
                        "displayOrder": len(ours) + i,
                        "hidden": bool(o.get("hidden", False)),
                    }
                    for i, o in enumerate(theirs)
                ),
            ]
    return changes


def ensure_properties(
    client: HubSpotClient, specs: Sequence[PropertySpec] = PROPERTIES
) -> list[Done]:
    """Create or fix the group and each property; the list says what was done."""
    done = []
    if client.get_property_group(OBJECT_TYPE, GROUP) is None:
        try:
            client.create_property_group(OBJECT_TYPE, GROUP, GROUP_LABEL)
            done.append(Done("group", GROUP, "created"))
        except PermanentHubSpotError as err:  # created meanwhile (another run)
            if not _already(err):
                raise
            done.append(Done("group", GROUP, "exists"))
    else:
        done.append(Done("group", GROUP, "exists"))
    for spec in specs:
        found = client.get_property(OBJECT_TYPE, spec.name)
        if found is None:
            try:
                client.create_property(OBJECT_TYPE, spec.definition())
                done.append(Done("property", spec.name, "created"))
                continue
            except PermanentHubSpotError as err:
                if not _already(err):
                    raise
                found = client.get_property(OBJECT_TYPE, spec.name) or {}
        if (found.get("type"), found.get("fieldType")) != (spec.type, spec.field_type):
            raise SetupError(
                f"contact property {spec.name} exists as {found.get('type')}/"
                f"{found.get('fieldType')}, but sla-bot writes {spec.type}/{spec.field_type}: "
                "delete or rename it in HubSpot, then run setup again"
            )
        changes = _changes(spec, found)
        if changes:
            client.update_property(OBJECT_TYPE, spec.name, changes)
            done.append(Done("property", spec.name, "updated"))
        else:
            done.append(Done("property", spec.name, "exists"))
    return done
