"""`sla-bot webhook sign|send FILE`: HubSpot-signed webhook requests by hand, e.g. with curl.

The signature is computed exactly as HubSpot does (integrations.hubspot.signatures), with the
service's own HUBSPOT_CLIENT_SECRET, so a hand-made request takes the same path as a real one.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from integrations.hubspot.signatures import sign_v1, sign_v2, sign_v3

PATH = "/webhooks/hubspot"


def signed_headers(
    body: bytes,
    *,
    url: str,
    secret: str,
    now: datetime,
    version: str = "v3",
    method: str = "POST",
) -> dict[str, str]:
    """The headers HubSpot sends with `body` to `url`: v3 (timestamped), or v2 / v1."""
    headers = {"Content-Type": "application/json"}
    if version == "v3":
        ts = str(int(now.timestamp() * 1000))
        headers["X-HubSpot-Signature-v3"] = sign_v3(secret, method, url, body, ts)
        headers["X-HubSpot-Request-Timestamp"] = ts
    elif version == "v2":
        headers["X-HubSpot-Signature"] = sign_v2(secret, method, url, body)
        headers["X-HubSpot-Signature-Version"] = "v2"
    else:
        headers["X-HubSpot-Signature"] = sign_v1(secret, body)
        headers["X-HubSpot-Signature-Version"] = "v1"
    return headers


def post(body: bytes, *, url: str, secret: str, now: datetime, version: str = "v3") -> Any:
    """POST a signed body; returns the requests.Response."""
    import requests

    headers = signed_headers(body, url=url, secret=secret, now=now, version=version)
    return requests.post(url, data=body, headers=headers, timeout=10)


def register(sub: Any) -> None:
    webhook = sub.add_parser(
        "webhook",
        help="sign or send a HubSpot webhook body by hand (try the service with curl)",
        description="Sign a webhook body with HUBSPOT_CLIENT_SECRET as HubSpot would.",
    )
    verbs = webhook.add_subparsers(dest="webhook_command", required=True, metavar="VERB")
    for name, func, text in (
        ("sign", cmd_sign, "print the signature headers for FILE (for curl -H @headers.txt)"),
        ("send", cmd_send, "POST FILE, signed, to the service and print the answer"),
    ):
        verb = verbs.add_parser(name, help=text, description=text)
        verb.add_argument("file", type=Path, help="JSON body: an event array or a workflow object")
        verb.add_argument(
            "--url",
            help=f"the URL it is sent to (signed as part of v2/v3): default SLA_BOT_PUBLIC_URL, "
            f"else http://SLA_BOT_HOST:SLA_BOT_PORT{PATH}",
        )
        verb.add_argument(
            "--signature",
            choices=("v3", "v2", "v1"),
            default="v3",
            help="v3 (Webhooks API, default) or v2 (workflow 'Send a webhook')",
        )
        verb.set_defaults(func=func)


def _prepare(args: argparse.Namespace) -> tuple[bytes, str, str] | int:
    from sla_bot.cli import settings_from_env

    settings = settings_from_env()
    if settings.hubspot_client_secret is None:
        print(
            "sla-bot webhook: HUBSPOT_CLIENT_SECRET is not set: export the same secret the "
            "service runs with",
            file=sys.stderr,
        )
        return 2
    try:
        body = args.file.read_bytes()
    except OSError as exc:
        print(f"sla-bot webhook: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        json.loads(body)
    except ValueError as exc:
        print(f"sla-bot webhook: {args.file} is not JSON: {exc}", file=sys.stderr)
        return 2
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = args.url or settings.public_url or f"http://{host}:{settings.port}{PATH}"
    return body, url, settings.hubspot_client_secret.get_secret_value()


def cmd_sign(args: argparse.Namespace) -> int:
    from sla_bot.clock import SystemClock

    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    body, url, secret = prepared
    now = SystemClock().now()
    for name, value in signed_headers(
        body, url=url, secret=secret, now=now, version=args.signature
    ).items():
        print(f"{name}: {value}")
    if args.signature == "v3":
        print(f"# signed for POST {url}; valid for 5 minutes", file=sys.stderr)
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    import requests

    from sla_bot.clock import SystemClock

    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    body, url, secret = prepared
    try:
        response = post(
            body, url=url, secret=secret, now=SystemClock().now(), version=args.signature
        )
    except requests.RequestException as exc:
        print(f"sla-bot webhook: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    print(f"{response.status_code} {response.reason}: {response.text.strip()}")
    return 0 if response.ok else 1
