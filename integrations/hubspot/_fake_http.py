"""HTTP side of the fake HubSpot: routing, HubSpot-format error replies, faults, rate windows."""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from integrations.hubspot._fake_crm import FakeCrm, Reply, error

ROUTES = Map(
    [
        Rule("/crm/v3/objects/<otype>/batch/read", methods=["POST"], endpoint="batch_read"),
        Rule("/crm/v3/objects/<otype>/search", methods=["POST"], endpoint="search"),
        Rule("/crm/v3/objects/<otype>", methods=["POST"], endpoint="create"),
        Rule("/crm/v3/objects/<otype>/<oid>", methods=["GET"], endpoint="get"),
        Rule("/crm/v3/objects/<otype>/<oid>", methods=["PATCH"], endpoint="patch"),
        Rule("/crm/v4/objects/<otype>/<oid>/associations/<to_type>", endpoint="associations"),
        Rule("/crm/v3/owners/", methods=["GET"], endpoint="owner_page", strict_slashes=False),
        Rule("/crm/v3/owners/<oid>", methods=["GET"], endpoint="owner"),
        Rule("/account-info/v3/details", methods=["GET"], endpoint="account"),
        Rule("/crm/v3/properties/<otype>/groups", methods=["POST"], endpoint="group_create"),
        Rule("/crm/v3/properties/<otype>/groups/<name>", methods=["GET"], endpoint="group_get"),
        Rule("/crm/v3/properties/<otype>", methods=["GET"], endpoint="property_list"),
        Rule("/crm/v3/properties/<otype>", methods=["POST"], endpoint="property_create"),
        Rule("/crm/v3/properties/<otype>/<name>", methods=["GET"], endpoint="property_get"),
        Rule("/crm/v3/properties/<otype>/<name>", methods=["PATCH"], endpoint="property_update"),
    ]
)
RATE_LIMIT_BODY = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "TEN_SECONDLY_ROLLING",
}
SECONDLY_BODY = {
    **RATE_LIMIT_BODY,
    "message": "You have reached your secondly limit.",
    "policyName": "SECONDLY",
}
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
DEFAULT_ERRORS = {
    400: ("Invalid input (injected)", "VALIDATION_ERROR"),
    401: (AUTH_MESSAGE, "INVALID_AUTHENTICATION"),
    403: ("This app hasn't been granted all required scopes to make this call.", "MISSING_SCOPES"),
    404: ("resource not found", "OBJECT_NOT_FOUND"),
    409: ("Conflict (injected)", "CONFLICT"),
}
Answer = tuple[int, Any, dict[str, str]]


@dataclass
class Fault:
    remaining: int
    path_contains: str | None
    method: str | None = None
    status: int = 0
    retry_after: float | str | None = None
    body: Any = None
    apply: bool = False
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.path_contains is None or self.path_contains in path)
            and (self.method is None or self.method.upper() == method)
        )


@dataclass
class RandomFailures:
    p: float
    statuses: tuple[int, ...]
    rng: random.Random
    path_contains: str | None

    def draw(self, path: str) -> Fault | None:
        if self.path_contains is not None and self.path_contains not in path:
            return None
        if self.rng.random() >= self.p:
            return None
        return Fault(1, None, status=self.rng.choice(self.statuses))


def take(rules: list[Fault], method: str, path: str) -> Fault | None:
    """Consume one use of the first rule matching the request."""
    for rule in rules:
        if rule.matches(method, path):
            rule.remaining -= 1
            return rule
    return None


def fault_reply(fault: Fault, is_search: bool) -> Answer:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    body = fault.body
    if body is None and fault.status == 429:
        ids = {"correlationId": str(uuid.uuid4()), "requestId": str(uuid.uuid4())}
        body = {**(SECONDLY_BODY if is_search else RATE_LIMIT_BODY), **ids}
        if not is_search:
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
    elif body is None:
        message, category = DEFAULT_ERRORS.get(fault.status, ("internal error", None))
        _, body = error(fault.status, message, category or "")
        if category is None:
            body.pop("category")
    return fault.status, body, headers


DAILY_BODY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "DAILY",
}


def dispatch(crm: FakeCrm, method: str, path: str, query: dict[str, str], payload: Any) -> Reply:
    try:
        endpoint, args = ROUTES.bind("fake").match(path, method=method)
    except HTTPException:
        return error(404, f"No route for {method} {path}", "NOT_FOUND")
    otype = args.get("otype")
    if otype is not None and otype not in crm.objects:
        return error(400, f"Unable to infer object type from: {otype}", "VALIDATION_ERROR")
    oid = args.get("oid", "")
    if endpoint == "batch_read":
        return crm.batch_read(otype, payload)
    if endpoint == "search":
        return crm.search(otype, payload)
    if endpoint == "create":
        return crm.create(otype, payload)
    if endpoint == "get":
        return crm.get(otype, oid, query)
    if endpoint == "patch":
        return crm.patch(otype, oid, payload)
    if endpoint == "associations":
        return crm.associations(otype, oid, args["to_type"])
    if endpoint == "owner":
        return crm.owner(oid, query)
    if endpoint == "account":
        return 200, account_details(crm.portal_id)
    if endpoint.startswith(("group_", "property_")):
        return _properties(crm, endpoint, args.get("name", ""), payload)
    return crm.owner_page(query)


def _properties(crm: FakeCrm, endpoint: str, name: str, payload: Any) -> Reply:
    store = crm.properties
    if endpoint == "group_create":
        return store.create_group(payload)
    if endpoint == "group_get":
        return store.get_group(name)
    if endpoint == "property_list":
        return store.all()
    if endpoint == "property_create":
        return store.create(payload, crm.now())
    if endpoint == "property_get":
        return store.get(name)
    return store.update(name, payload, crm.now())


def account_details(portal_id: int) -> dict[str, Any]:
    """``GET /account-info/v3/details``: the fields HubSpot documents for a standard portal."""
    return {
        "portalId": portal_id,
        "accountType": "STANDARD",
        "timeZone": "US/Eastern",
        "companyCurrency": "USD",
        "additionalCurrencies": [],
        "utcOffset": "-05:00",
        "utcOffsetMilliseconds": -18_000_000,
        "uiDomain": "app.hubspot.com",
        "dataHostingLocation": "na1",
    }


class RateWindow:
    """Real-time request counts for the X-HubSpot-RateLimit-* headers and optional 429s.

    HubSpot's rolling window: ``max`` requests per ``window`` seconds (10 s for real), and the
    search API's own ``search_max`` per ``search_window`` (5 per second). Tests scale both down.
    """

    def __init__(
        self,
        max_per_window: int,
        window: float = 10.0,
        search_max: int = 5,
        search_window: float = 1.0,
    ) -> None:
        self.max = max_per_window
        self.window = window
        self.search_max = search_max
        self.search_window = search_window
        self.enforce = False
        self._hits: deque[tuple[float, bool]] = deque()

    def hit(self, is_search: bool, now: float | None = None) -> Answer | None:
        """Count a request; the 429 answer if ``enforce`` and a limit is exceeded."""
        now = time.monotonic() if now is None else now
        self._hits.append((now, is_search))
        horizon = max(self.window, self.search_window)
        while self._hits and self._hits[0][0] <= now - horizon:
            self._hits.popleft()
        if not self.enforce:
            return None
        ids = {"correlationId": str(uuid.uuid4())}
        if is_search:
            recent = sum(1 for t, s in self._hits if s and t > now - self.search_window)
            if recent > self.search_max:
                return 429, {**SECONDLY_BODY, **ids}, {}
        elif self.used(now) > self.max:
            return 429, {**RATE_LIMIT_BODY, **ids}, {"X-HubSpot-RateLimit-Remaining": "0"}
        return None

    def used(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return sum(1 for t, s in self._hits if not s and t > now - self.window)

    def headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.max),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.max - self.used())),
        }
