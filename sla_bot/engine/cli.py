"""`sla-bot lead show CONTACT_ID [--portal ID] [--json]`: a lead, its audit trail and timeline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sla_bot.engine import audit
from sla_bot.engine import leads as repo


def register(subparsers: Any) -> None:
    lead = subparsers.add_parser("lead", help="inspect leads: why was I pinged?")
    sub = lead.add_subparsers(dest="lead_command", required=True, metavar="LEAD_COMMAND")
    show = sub.add_parser("show", help="a lead's state, decisions and timeline")
    show.add_argument("contact_id", type=int, help="HubSpot contact (object) id")
    show.add_argument("--portal", type=int, default=None, help="HubSpot portal id")
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
    report = describe(lead, events, services.rules, services.clock.now())
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(as_text(report))
    return 0


def describe(lead: repo.Lead, events: list[dict[str, Any]], holder: Any, now: Any) -> dict:
    """Everything `lead show` prints, as JSON-able data."""
    timeline = None
    if lead.policy and holder is not None and lead.policy_snapshot:
        from sla_bot.engine.pinning import pinned
        from sla_bot.engine.timeline import timeline_of

        loaded = holder.current()
        tl = timeline_of(lead, pinned(loaded, lead.policy_hash, lead.policy_snapshot), now)
        timeline = tl.to_dict() if tl else None
    return {
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
            "touches": lead.touches,
            "version": lead.version,
        },
        "events": events,
        "timeline": timeline,
    }


def as_text(report: dict[str, Any]) -> str:
    lead = report["lead"]
    lines = [
        f"Lead {lead['id']}: contact {lead['contact_id']} in portal {lead['portal_id']}",
        f"Status:  {lead['status']}"
        + (f" ({lead['closed_reason']})" if lead["closed_reason"] else ""),
        f"Policy:  {lead['policy'] or '-'} (rules {lead['rules_version'] or '-'})",
        f"Owner:   {lead['owner_id'] or '-'}",
        f"Next:    {lead['next_due_at'] or '-'}",
        f"Touches: {len(lead['touches'])}",
        "",
        "WHEN (UTC)                 EVENT               DETAIL",
    ]
    for ev in report["events"]:
        detail = json.dumps(ev["detail"], default=str, sort_keys=True)
        lines.append(f"{ev['at'][:26]:<26} {ev['kind']:<19} {detail[:160]}")
    tl = report["timeline"]
    if tl:
        lines += ["", f"Timeline ({tl['status']}):"]
        for s in tl["steps"]:
            who = ", ".join(r.get("name", "?") for r in s["recipients"]) or "-"
            lines.append(f"  {s['due_at'][:19]}  {s['key']:<28} {s['state']:<9} {who}")
    return "\n".join(lines)
