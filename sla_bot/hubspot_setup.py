"""`sla-bot hubspot setup`: create the outcome properties in the token's portal, then let the
engine write them (per portal: a `sync_state` marker the sweep reads)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    hubspot = subparsers.add_parser("hubspot", help="HubSpot portal setup")
    sub = hubspot.add_subparsers(dest="hubspot_command", required=True, metavar="HUBSPOT_COMMAND")
    setup = sub.add_parser(
        "setup",
        help="create sla-bot's outcome properties in HubSpot (idempotent)",
        description="Creates the contact property group 'sla_bot' and the outcome properties "
        "(first-touch time, business minutes to first touch, met/breached, policy, touches "
        "before outcome, outcome) through the CRM properties API, then turns on writing them. "
        "Needs the scope crm.schemas.contacts.write. Safe to run again.",
    )
    setup.add_argument("--portal", type=int, help="only this portal (default: every connected one)")
    setup.set_defaults(func=cmd_setup)


def cmd_setup(args: argparse.Namespace) -> int:
    from sla_bot.cli import build_services, settings_from_env

    services = build_services(settings_from_env())
    try:
        return setup(services, portal=args.portal)
    finally:
        services.engine.dispose()


def setup(services: Any, *, portal: int | None = None) -> int:
    """Create the properties in every connected portal (or one), then turn on writing them."""
    from integrations.hubspot.errors import HubSpotError
    from integrations.hubspot.properties import SCOPE, SetupError, ensure_properties
    from sla_bot.db.engine import write_transaction
    from sla_bot.engine.outcome_store import mark_writeback
    from sla_bot.worker_jobs import hubspot_clients

    clients = hubspot_clients(services)
    if clients is None:
        print(
            "sla-bot: no HubSpot portal is connected (HUBSPOT_ACCESS_TOKEN, HUBSPOT_PORTALS_FILE "
            "or OAuth installs): nothing to set up",
            file=sys.stderr,
        )
        return 2
    failed = 0
    try:
        portals = [portal] if portal is not None else clients.portal_ids()
        if not portals:
            print("sla-bot: no connected portal has usable credentials", file=sys.stderr)
            return 2
        for portal_id in portals:
            try:
                done = ensure_properties(clients.client_for(portal_id))
            except (SetupError, LookupError) as exc:
                print(f"sla-bot: portal {portal_id}: {exc}", file=sys.stderr)
                failed += 1
                continue
            except HubSpotError as exc:
                hint = f" (the token needs the scope {SCOPE})" if exc.status == 403 else ""
                print(
                    f"sla-bot: portal {portal_id}: HubSpot refused the setup: {exc}{hint}",
                    file=sys.stderr,
                )
                failed += 1
                continue
            for step in done:
                print(f"portal {portal_id}: {step.kind} {step.name}: {step.result}")
            with write_transaction(services.engine) as conn:
                mark_writeback(conn, portal_id, now=services.clock.now())
            print(f"portal {portal_id}: outcome properties are written back from now on")
    finally:
        clients.close()
    return 1 if failed else 0
