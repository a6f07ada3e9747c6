"""What sla-bot writes to HubSpot for tasks, notes and logged touches, and the idempotency marker.

Idempotency marker: ``[sla-bot:slabot<32 hex>]`` appended to the object's body property, where
the hex is ``sha256(idempotency_key)[:32]``. The token is purely alphanumeric so HubSpot's
``CONTAINS_TOKEN`` search operator sees it as one token whatever its tokenizer splits on, it has a
fixed length, and it does not leak our internal keys into the CRM.

Touch mapping (``kind``/``outcome`` -> HubSpot object):

=========  ================  ====================================================================
kind       object            fields
=========  ================  ====================================================================
call       calls (194)       status COMPLETED, direction OUTBOUND, disposition Connected (connect)
                             or No answer (attempt) - HubSpot's default outcome GUIDs
voicemail  calls (194)       as call, disposition Left voicemail (whatever the outcome)
email      emails (198)      direction EMAIL (outgoing), status SENT; outcome not representable
meeting    meetings (200)    outcome COMPLETED (connect) or NO_SHOW (attempt)
linkedin   communications    channel LINKEDIN_MESSAGE, logged_from CRM; outcome not representable
           (81)
=========  ================  ====================================================================

Association type ids are HUBSPOT_DEFINED ``<object>_to_contact`` ids. 81 (communication ->
contact) is from HubSpot's association-type table (the SDK enum lacks communications); the
contact -> communication id is 82 (reference §5).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sla_bot.engine.touches import TOUCH_KINDS
from sla_bot.rules.steps import TOUCH_OUTCOMES


@dataclass(frozen=True)
class ObjectSpec:
    kind: str  # our name, also the key of the SDK discovery attribute
    object_type: str  # REST path segment, e.g. "tasks"
    body_property: str  # where the idempotency marker goes
    association_type_id: int  # HUBSPOT_DEFINED <object> -> contact


TASK = ObjectSpec("tasks", "tasks", "hs_task_body", 204)
NOTE = ObjectSpec("notes", "notes", "hs_note_body", 202)
CALL = ObjectSpec("calls", "calls", "hs_call_body", 194)
EMAIL = ObjectSpec("emails", "emails", "hs_email_text", 198)
MEETING = ObjectSpec("meetings", "meetings", "hs_meeting_body", 200)
COMMUNICATION = ObjectSpec("communications", "communications", "hs_communication_body", 81)
SPECS = {s.object_type: s for s in (TASK, NOTE, CALL, EMAIL, MEETING, COMMUNICATION)}

CALL_DISPOSITION = {
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "left_voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
}
MEETING_OUTCOME = {"connect": "COMPLETED", "attempt": "NO_SHOW"}


def hubspot_datetime(at: datetime) -> str:
    """ISO-8601 UTC with milliseconds, as HubSpot writes it. Naive datetimes are refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("HubSpot timestamps need an aware datetime")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def idempotency_token(key: str) -> str:
    if not key:
        raise ValueError("idempotency_key must not be empty")
    return "slabot" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def with_marker(body: str, token: str) -> str:
    marker = f"[sla-bot:{token}]"
    return f"{body}\n\n{marker}" if body else marker


def has_marker(text: str | None, token: str) -> bool:
    return bool(text) and f"sla-bot:{token}" in text


def _base(at: datetime, owner_id: str | None) -> dict[str, str]:
    props = {"hs_timestamp": hubspot_datetime(at)}
    if owner_id:
        props["hubspot_owner_id"] = str(owner_id)
    return props


def task_properties(
    *, subject: str, body: str, owner_id: str | None, due: datetime, token: str
) -> dict[str, str]:
    return {
        **_base(due, owner_id),
        "hs_task_subject": subject,
        "hs_task_body": with_marker(body, token),
        "hs_task_status": "NOT_STARTED",
        "hs_task_type": "TODO",
    }


def note_properties(*, body: str, owner_id: str | None, at: datetime, token: str) -> dict[str, str]:
    return {**_base(at, owner_id), "hs_note_body": with_marker(body, token)}


def touch_properties(
    kind: str, outcome: str, *, note: str, owner_id: str | None, at: datetime, token: str
) -> tuple[ObjectSpec, dict[str, str]]:
    """The object type and properties for a logged touch (see the table in the module doc)."""
    if kind not in TOUCH_KINDS:
        raise ValueError(f"unknown touch kind {kind!r}")
    if outcome not in TOUCH_OUTCOMES:
        raise ValueError(f"unknown touch outcome {outcome!r}")
    props = _base(at, owner_id)
    body = with_marker(note, token)
    if kind in ("call", "voicemail"):
        if kind == "voicemail":
            disposition, title = CALL_DISPOSITION["left_voicemail"], "Left voicemail"
        elif outcome == "connect":
            disposition, title = CALL_DISPOSITION["connected"], "Call - connected"
        else:
            disposition, title = CALL_DISPOSITION["no_answer"], "Call attempt"
        props |= {
            "hs_call_title": title,
            "hs_call_body": body,
            "hs_call_status": "COMPLETED",
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": disposition,
        }
        return CALL, props
    if kind == "email":
        props |= {
            "hs_email_direction": "EMAIL",
            "hs_email_status": "SENT",
            "hs_email_subject": "Email logged via sla-bot",
            "hs_email_text": body,
        }
        return EMAIL, props
    if kind == "meeting":
        props |= {
            "hs_meeting_title": "Meeting logged via sla-bot",
            "hs_meeting_body": body,
            "hs_meeting_start_time": props["hs_timestamp"],
            "hs_meeting_end_time": props["hs_timestamp"],
            "hs_meeting_outcome": MEETING_OUTCOME[outcome],
        }
        return MEETING, props
    props |= {
        "hs_communication_channel_type": "LINKEDIN_MESSAGE",
        "hs_communication_logged_from": "CRM",
        "hs_communication_body": body,
    }
    return COMMUNICATION, props
