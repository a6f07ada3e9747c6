"""The contact properties sla-bot writes back so RevOps can use HubSpot's own reports.

One definition per property (what `sla-bot hubspot setup` creates through the CRM properties
API), and the builders of the values the engine writes through the outbox. Enumeration values
are the facts' own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sla_bot.engine.outcomes import Outcome

GROUP = "sla_bot"
GROUP_LABEL = "SLA bot"


@dataclass(frozen=True)
class PropertySpec:
    name: str
    label: str
    type: str  # HubSpot property type: string, number, datetime, enumeration
    field_type: str  # text, number, date, select
    description: str
    options: tuple[tuple[str, str], ...] = ()  # (value, label) of an enumeration

    def definition(self) -> dict[str, Any]:
        """The body of `POST /crm/v3/properties/contacts` (HubSpot's JSON names)."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": GROUP,
            "description": self.description,
        }
        if self.options:
            body["options"] = [
                {"value": v, "label": label, "displayOrder": i, "hidden": False}
                for i, (v, label) in enumerate(self.options)
            ]
        return body


FIRST_TOUCH_AT = "sla_bot_first_touch_at"
BUSINESS_MINUTES = "sla_bot_business_minutes_to_first_touch"
FIRST_TOUCH_SLA = "sla_bot_first_touch_sla"
POLICY = "sla_bot_policy"
TOUCHES_BEFORE_OUTCOME = "sla_bot_touches_before_outcome"
OUTCOME = "sla_bot_outcome"

PROPERTIES: tuple[PropertySpec, ...] = (
    PropertySpec(
        FIRST_TOUCH_AT,
        "First touch (sla-bot)",
        "datetime",
        "date",
        "When the first touch sla-bot counted for this lead happened.",
    ),
    PropertySpec(
        BUSINESS_MINUTES,
        "Business minutes to first touch",
        "number",
        "number",
        "Open business minutes from the start of the SLA clock to the first touch (held time "
        "skipped).",
    ),
    PropertySpec(
        FIRST_TOUCH_SLA,
        "First-touch SLA",
        "enumeration",
        "select",
        "Whether the first touch came by the SLA deadline.",
        (("met", "Met"), ("breached", "Breached")),
    ),
    PropertySpec(
        POLICY,
        "SLA policy",
        "string",
        "text",
        "The sla-bot policy the lead was worked under.",
    ),
    PropertySpec(
        TOUCHES_BEFORE_OUTCOME,
        "Touches before outcome",
        "number",
        "number",
        "Touches sla-bot counted before the lead converted, was recycled or disqualified.",
    ),
    PropertySpec(
        OUTCOME,
        "Lead outcome (sla-bot)",
        "enumeration",
        "select",
        "How the lead ended: converted by a stop condition, recycled or disqualified.",
        (("converted", "Converted"), ("recycled", "Recycled"), ("disqualified", "Disqualified")),
    ),
)


def _iso(at: Any) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def first_touch(o: Outcome) -> dict[str, Any]:
    """The first-touch facts: when, how fast in business minutes, met or breached, policy."""
    props: dict[str, Any] = {POLICY: o.policy}
    if o.result in ("met", "breached"):
        props[FIRST_TOUCH_SLA] = o.result
    if o.first_touch_at is not None:
        props[FIRST_TOUCH_AT] = _iso(o.first_touch_at)
    if o.business_seconds is not None:
        props[BUSINESS_MINUTES] = round(o.business_seconds / 60, 2)
    return props


def closed(o: Outcome) -> dict[str, Any]:
    """How the lead ended, and the touches it got before."""
    props: dict[str, Any] = {POLICY: o.policy}
    if o.outcome in ("converted", "recycled", "disqualified"):
        props[OUTCOME] = o.outcome
    if o.touches_before_outcome is not None:
        props[TOUCHES_BEFORE_OUTCOME] = o.touches_before_outcome
    return props
