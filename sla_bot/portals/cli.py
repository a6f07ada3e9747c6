"""`sla-bot portals list|remove|rotate-key`: connected HubSpot portals, for operators."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    portals = subparsers.add_parser("portals", help="connected HubSpot portals")
    sub = portals.add_subparsers(dest="portals_command", required=True, metavar="PORTALS_COMMAND")
    listing = sub.add_parser(
        "list", help="portals, how they connect, token health, last webhook and reconciliation"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)
    remove = sub.add_parser(
        "remove", help="stop every call to a portal (its leads and history are kept)"
    )
    remove.add_argument("portal_id", type=int)
    remove.set_defaults(func=cmd_remove)
    rotate = sub.add_parser(
        "rotate-key", help="re-encrypt stored tokens with the first key of SLA_BOT_SECRET_KEY"
    )
    rotate.set_defaults(func=cmd_rotate_key)


def _open() -> Any:
    from sla_bot.cli import build_services, settings_from_env

    return build_services(settings_from_env())


def cmd_list(args: argparse.Namespace) -> int:
    from sla_bot.portals.apps import secret_box
    from sla_bot.portals.status import portal_statuses

    services = _open()
    try:
        found = portal_statuses(
            services.engine,
            services.settings,
            secret_box(services.settings),
            now=services.clock.now(),
        )
    finally:
        services.engine.dispose()
    if args.json:
        print(json.dumps([p.as_json() for p in found], indent=2))
        return 0
    if not found:
        print("no HubSpot portals: set HUBSPOT_ACCESS_TOKEN or HUBSPOT_PORTALS_FILE, or install")
        print("the app at /oauth/hubspot/install")
        return 0
    header = ("portal", "auth", "status", "token", "last webhook", "last reconcile", "open")
    rows = [header] + [
        (
            str(p.portal_id),
            p.auth,
            p.status,
            p.token,
            _when(p.last_webhook),
            _when(p.last_reconciliation),
            str(p.leads_open),
        )
        for p in found
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "never"


def cmd_remove(args: argparse.Namespace) -> int:
    from sla_bot.portals import store
    from sla_bot.portals.config import configured_portals

    services = _open()
    try:
        known = store.load_all(services.engine)
        configured = {p.portal_id: p for p in configured_portals(services.settings)}
        if args.portal_id not in known and args.portal_id not in configured:
            print(f"sla-bot: portal {args.portal_id} is not connected", file=sys.stderr)
            return 1
        store.set_status(services.engine, args.portal_id, store.REMOVED, now=services.clock.now())
    finally:
        services.engine.dispose()
    print(
        f"portal {args.portal_id} removed: workers stop calling HubSpot for it within seconds; "
        "its leads, events and audit history are kept, and its leads are now routed on what "
        "their webhooks carry."
    )
    if args.portal_id in configured:
        print(f"Also delete it from {configured[args.portal_id].source.split('[')[0]}.")
    else:
        print("Its OAuth tokens were deleted; install the app again to reconnect it.")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from sla_bot.portals import store
    from sla_bot.portals.apps import secret_box

    services = _open()
    box = secret_box(services.settings)
    if box is None:
        print("sla-bot: SLA_BOT_SECRET_KEY is not set", file=sys.stderr)
        return 2
    try:
        n = store.rotate_key(services.engine, box, now=services.clock.now())
    finally:
        services.engine.dispose()
    print(f"re-encrypted the tokens of {n} portal(s) with the first key of SLA_BOT_SECRET_KEY")
    return 0
