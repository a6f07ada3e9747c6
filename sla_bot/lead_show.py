"""`sla-bot lead show CONTACT_ID [--portal ID] [--json]`: a lead, its audit trail and timeline."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla_bot.engine import audit
from sla_bot.engine import leads as repo
from sla_bot.engine.batched import batch_lines
from sla_bot.engine.state import history
from sla_bot.rules.simulate import history_json


def register(subparsers: Any) -> None:
    lead = subparsers.add_parser(
        "lead",
        help="inspect leads: why was I pinged?",
        description="Inspect leads in the service's database (DATABASE_URL).",
    )
    sub = lead.add_subparsers(dest="lead_command", required=True, metavar="LEAD_COMMAND")
    show = sub.add_parser(
        "show",
        help="a lead's state, decisions and timeline",
        description="A lead's state, every event and decision about it (who was told what, "
        "when) and its timeline under the policy it was routed to.",
    )
    show.add_argument("contact_id", type=int, help="HubSpot contact (object) id")
    show.add_argument("--portal", type=int, default=None, help="HubSpot portal id")
    show.add_argument(
        "--tz", default="UTC", help="time zone for the times shown, e.g. America/New_York"
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    from sla_bot.cli import build_services, settings_from_env

    services = build_services(settings_from_env())
    try:
        return _show(services, args)
    finally:
        services.engine.dispose()


def _show(services: Any, args: argparse.Namespace) -> int:
    with services.engine.connect() as conn:
        found = repo.find_by_object(conn, args.contact_id, args.portal)
        if not found:
            print(f"sla-bot: no lead for contact {args.contact_id}", file=sys.stderr)
            return 1
        if len(found) > 1:
            portals = ", ".join(str(lead.portal_id) for lead in found)
            print(f"sla-bot: contact {args.contact_id} is in portals {portals}; use --portal")
            return 1
        lead = found[0]
        assert lead.id is not None
        events = audit.history(conn, lead.id)
        batched = batch_lines(conn, lead.id)
    report = describe(lead, events, services.rules, services.clock.now())
    report["batches"] = batched
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    try:
        zone = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"sla-bot: unknown time zone {args.tz!r} (--tz), e.g. America/New_York")
        return 2
    print(as_text(report, zone=zone, width=shutil.get_terminal_size((120, 24)).columns))
    return 0


def describe(lead: repo.Lead, events: list[dict[str, Any]], holder: Any, now: Any) -> dict:
    """Everything `lead show` prints, as JSON-able data.

    Each step of the timeline says what the engine did with it (`outcome`: sent, silenced,
    skipped...), so a step shows as sent only if it was; a step that is due but not decided yet
    says so ("due: decided on the next sweep").
    """
    timeline = None
    if lead.policy and holder is not None and lead.policy_snapshot:
        from sla_bot.engine.pinning import pinned
        from sla_bot.engine.schedule import timeline_of

        loaded = holder.current()
        tl = timeline_of(lead, pinned(loaded, lead.policy_hash, lead.policy_snapshot), now)
        if tl is not None:
            timeline = tl.to_dict()
            for step in timeline["steps"]:
                step["outcome"] = outcome(step, lead.state.decided)
    return {
        "note": ignored_note(lead, holder),
        "lead": {
            "id": lead.id,
            "portal_id": lead.portal_id,
            "contact_id": lead.object_id,
            "status": lead.status,
            "closed_reason": lead.closed_reason,
            "policy": lead.policy,
            "policy_hash": lead.policy_hash,
            "rules_version": lead.rules_version,
            "owner_id": lead.owner_id,
            "clock_started_at": lead.clock_started_at,
            "next_due_at": lead.next_due_at,
            "touches": [t.model_dump(mode="json", exclude_defaults=True) for t in lead.touches],
            "decided": lead.state.decided,
            "version": lead.version,
        },
        "events": events,
        "timeline": timeline,
        "simulate": simulate_input(lead),
    }


def simulate_input(lead: repo.Lead) -> dict[str, Any]:
    """The lead as `rules simulate --lead` reads it, history included, so the two can be
    compared: `rules simulate --lead <this> --at T` shows the timeline `lead show` shows at T."""
    props = dict(lead.properties)
    if lead.clock_started_at and lead.policy_snapshot:
        starts = lead.policy_snapshot.get("definition", {}).get("first_touch", {})
        if starts.get("clock_starts") == "owner_assigned":
            props["hubspot_owner_assigneddate"] = lead.clock_started_at.isoformat()
    return {
        "portalId": lead.portal_id,
        "policy": lead.policy,
        "properties": props,
        "touches": [{"at": t.at.isoformat(), "connect": t.connect} for t in lead.touches],
        "history": history_json(history(lead.state)),
    }


def outcome(step: dict[str, Any], decided: dict[str, str]) -> str:
    """What happened to a step: the engine's record for decided ones, else the timeline's."""
    if step["key"] in decided:
        return decided[step["key"]]
    if step["state"] == "fired":
        return "due: decided on the next sweep"
    return step["state"]


def ignored_note(lead: repo.Lead, holder: Any) -> str | None:
    """Why an ignored lead had nothing to route on, when that is the reason."""
    if lead.status != "ignored" or holder is None or not holder.loaded:
        return None
    ruleset = holder.current().ruleset
    wanted = {
        p for block in ruleset.routing.values() for r in block.leads for p in r.when.properties()
    }
    known = {k for k, v in (lead.properties or {}).items() if v not in (None, "")}
    if wanted & known:
        return None
    return (
        "ignored for lack of properties: none of the properties routing reads ("
        + ", ".join(sorted(wanted))
        + ") was known. A contact.creation webhook carries no properties; the service reads them "
        "from HubSpot only with HUBSPOT_ACCESS_TOKEN set, or gets them in a workflow webhook "
        "body (README: Try it with curl)."
    )


def _when(value: Any, zone: ZoneInfo) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM:SS ZONE'; anything else unchanged."""
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        return str(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _value(value: Any, zone: ZoneInfo) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        if "name" in value and "role" in value:  # a recipient
            extra = [value["role"]]
            if value.get("deliver_at"):
                extra.append(f"at {_when(value['deliver_at'], zone)}")
            if value.get("note"):
                extra.append(str(value["note"]))
            return f"{value['name']} ({', '.join(extra)})"
        return ", ".join(f"{k} {_value(v, zone)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(_value(v, zone) for v in value) if value else "none"
    return _when(value, zone)


def detail_text(detail: Any, zone: ZoneInfo) -> str:
    """An audit detail as words: `key: value; ...`, recipients by name, times with their zone."""
    if not isinstance(detail, dict):
        return _value(detail, zone)
    return "; ".join(f"{k}: {_value(v, zone)}" for k, v in detail.items())


def as_text(report: dict[str, Any], *, zone: ZoneInfo | None = None, width: int = 120) -> str:
    """The human view: nothing cut off (long details wrap), every time with its zone."""
    zone = zone or ZoneInfo("UTC")
    lead = report["lead"]
    lines = [
        f"Lead {lead['id']}: contact {lead['contact_id']} in portal {lead['portal_id']}",
        f"Status:  {lead['status']}"
        + (f" ({lead['closed_reason']})" if lead["closed_reason"] else ""),
        f"Policy:  {lead['policy'] or '-'} (rules {lead['rules_version'] or '-'})",
        f"Owner:   {lead['owner_id'] or '-'}",
        f"Next:    {_when(lead['next_due_at'], zone) if lead['next_due_at'] else '-'}",
        f"Touches: {len(lead['touches'])}",
    ]
    if report.get("note"):
        lines += textwrap.wrap(f"Note:    {report['note']}", width, subsequent_indent=" " * 9)
    when_width = len(_when(datetime(2000, 1, 1, tzinfo=UTC), zone))
    indent = " " * (when_width + 2 + 20)
    lines += ["", f"{'WHEN':<{when_width}}  {'EVENT':<19} DETAIL"]
    for ev in report["events"]:
        head = f"{_when(ev['at'], zone):<{when_width}}  {ev['kind']:<19} "
        text = detail_text(ev["detail"], zone)
        wrapped = textwrap.wrap(
            text,
            max(40, width - len(head)),
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
        lines.append(head + wrapped[0])
        lines += [indent + more for more in wrapped[1:]]
    tl = report["timeline"]
    if tl:
        lines += ["", f"Timeline ({tl['status']}):"]
        for h in tl.get("holds", []):
            end = _when(h["end"], zone) if h["end"] else "now"
            lines.append(f"  held {_when(h['start'], zone)} .. {end}  {h['why']}")
        for s in tl["steps"]:
            who = ", ".join(r.get("name", "?") for r in s["recipients"]) or "-"
            lines.append(f"  {_when(s['due_at'], zone)}  {s['key']:<28} {s['outcome']:<9} {who}")
    if report.get("batches"):
        lines += ["", "Batched messages (noise control):"]
        lines += [f"  {b['text']}" for b in report["batches"]]
    return "\n".join(lines)
