"""A local fake HubSpot HTTP server for tests: the real SDK talks to it over real sockets.

Usage::

    with FakeHubSpot(token="test-token") as fake:          # start() / stop()
        fake.add_contact("101", {"email": "a@example.com"})
        client = HubSpotClient("test-token", base_url=fake.base_url)

Speaks (HubSpot v3 JSON shapes, checked against hubspot-api-client 12 deserialisation):

* ``POST /crm/v3/objects/{type}/batch/read`` - 200, or 207 + ``errors`` (OBJECT_NOT_FOUND with
  ``context.ids``) when ids are missing; 400 on > 100 inputs or duplicate ids.
* ``GET|PATCH /crm/v3/objects/{type}/{id}`` - 404 when missing; PATCH of a read-only property
  (``lastmodifieddate``, ``createdate``, ``num_contacted_notes``...) is a 400 VALIDATION_ERROR.
* ``POST /crm/v3/objects/{type}/search`` - filterGroups (OR of ANDed filters; EQ NEQ LT LTE GT GTE
  BETWEEN IN NOT_IN HAS_PROPERTY NOT_HAS_PROPERTY CONTAINS_TOKEN NOT_CONTAINS_TOKEN; dates compare
  as epoch ms), first sort, ``limit`` <= 200, ``after`` offset paging, ``total``, and the result
  cap (``search_cap``, default 10,000): ``after >= cap`` is a 400. No rate-limit headers.
* ``POST /crm/v3/objects/{tasks,notes,calls,emails,meetings,communications}`` with inline
  associations; only the HUBSPOT_DEFINED ``<object>_to_contact`` type ids (204, 202, 194, 198,
  200, 81) to an existing contact are accepted; ``hs_timestamp`` is required. Logged touches
  update the contact's roll-ups (``num_contacted_notes``, ``notes_last_contacted``, ``num_notes``,
  ``notes_last_updated``, and ``hs_sa_first_engagement_date`` for the current owner's first
  engagement, cleared when the owner changes) at once - HubSpot does that asynchronously.
* ``GET /crm/v4/objects/{type}/{id}/associations/{toType}``.
* ``GET /crm/v3/owners/{id}`` (``idProperty``, ``archived``) and ``GET /crm/v3/owners/``
  (``email``, ``limit``, ``after``, ``archived``).
* ``GET /account-info/v3/details`` - ``portalId`` (``portal_id``, default 62515) and friends.
* ``GET|POST /crm/v3/properties/{type}/groups[/{name}]`` and ``GET|POST|PATCH
  /crm/v3/properties/{type}[/{name}]`` - property groups and definitions, 409 when they exist;
  contact writes are then checked against the definitions (see ``_fake_properties``): a property
  the portal does not have, or a value outside an enumeration's options, is a 400.

Several portals, each with its own CRM data: the constructor's ``token`` reads the default portal
(``portal_id``); :meth:`add_portal` adds more (optionally with a private-app token). Every CRM
request needs ``Authorization: Bearer <token>`` and is answered from *that token's* portal (else
401 in HubSpot's error format: unknown, expired or revoked token). Non-search responses carry
``X-HubSpot-RateLimit-*`` headers; with ``enforce_rate_limit = True`` the fake also answers 429
past ``rate_limit_max`` requests per ``rate_window`` (100 / 10 s) and ``search_limit`` searches per
``search_window`` (5 / s) - per portal, real time. Each portal records its requests' arrival
times (``portal(id).arrivals``) so tests can check every window against a budget;
``portal(id).daily_limit_exhausted = True`` answers every call with the DAILY 429.

OAuth (see :mod:`integrations.hubspot._fake_oauth`): :meth:`register_app`; ``GET /oauth/authorize``
(the browser step) redirects back with a code for ``login_portal``; ``POST /oauth/v1/token``
exchanges codes and refresh tokens; ``GET /oauth/v1/access-tokens/{token}`` describes a token;
:meth:`uninstall` revokes a portal's tokens, :meth:`expire_tokens` ends its access tokens now.

Search index lag: ``search_lag`` (seconds, default 0; HubSpot's is a few seconds) hides objects
created less than that long ago (by ``now``) from search, as HubSpot's index does.

Fault injection (first matching rule wins, each consumes one request): :meth:`fail_next`,
:meth:`failure_rate`, :meth:`delay_next`. ``fail_next(..., apply=True)`` processes the request and
*then* answers with the error - the ambiguous "created but the response was lost" case.
``delay_next`` also processes first and delays the response, so a client timeout is ambiguous.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from integrations.hubspot._fake_crm import FakeCrm, error, iso, parse_iso
from integrations.hubspot._fake_http import (
    AUTH_MESSAGE,
    DAILY_BODY,
    Answer,
    Fault,
    RandomFailures,
    RateWindow,
    dispatch,
    fault_reply,
    take,
)
from integrations.hubspot._fake_oauth import App, FakeOAuth, Grant
from integrations.local_server import LocalServer
from sla_bot.clock import ManualClock  # noqa: F401  (re-exported for tests)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int | None = None  # the status the fake answered with
    portal_id: int | None = None  # the portal the token belongs to (CRM calls)


def max_in_any_window(times: Iterable[float], window: float) -> int:
    """The most of ``times`` that fall within any half-open interval of length ``window``."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class FakePortal:
    """One HubSpot account in the fake: its CRM, its rate window, its request log."""

    def __init__(self, portal_id: int, fake: FakeHubSpot) -> None:
        self.portal_id = portal_id
        self._crm = FakeCrm(lambda: fake.now())  # late-bound: tests may swap the clock
        self._crm.lock = fake.lock
        self._crm.portal_id = portal_id
        self._crm.search_cap = fake.default_search_cap
        self.window = RateWindow(
            fake.rate_limit_max, fake.rate_window, fake.search_limit, fake.search_window
        )
        self.window.enforce = fake.enforce_rate_limit
        self.arrivals: list[tuple[float, bool, int]] = []  # (monotonic, is_search, status)
        self.daily_limit_exhausted = False

    def windows_max(self, window: float, *, search: bool = False) -> int:
        """The most requests (non-search, or search) that arrived within any ``window``."""
        return max_in_any_window([t for t, s, _ in self.arrivals if s == search], window)

    @property
    def rejected(self) -> int:
        """How many requests of this portal the fake answered with 429."""
        return sum(1 for _, _, status in self.arrivals if status == 429)

    # -- test-facing data API ---------------------------------------------------------------------

    def add_contact(
        self,
        id: str,
        properties: dict[str, Any] | None = None,
        *,
        updated_at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> None:
        """Seed a contact. ``lastmodifieddate``/``createdate`` in ``properties`` (ISO or epoch
        ms) count as ``updated_at``/``created_at``; ``updated_at`` defaults to now."""
        props = dict(properties or {})
        updated = updated_at or parse_iso(props.pop("lastmodifieddate", None))
        created = created_at or parse_iso(props.pop("createdate", None))
        with self._crm.lock:
            updated = updated or self._crm.now()
            self._crm.put("contacts", str(id), props, created or updated, updated)

    def set_property(self, id: str, name: str, value: Any, *, at: datetime | None = None) -> None:
        """Change a contact property as a HubSpot user would; bumps ``lastmodifieddate``."""
        with self._crm.lock:
            obj = self._crm.objects["contacts"][str(id)]
            self._crm.properties.seen.add(name)
            obj.properties[name] = None if value is None else str(value)
            obj.touch(at or self._crm.now())

    def archive_contact(self, id: str) -> None:
        with self._crm.lock:
            self._crm.objects["contacts"][str(id)].archived = True

    def add_owner(
        self,
        id: str,
        email: str | None,
        first_name: str | None = None,
        last_name: str | None = None,
        *,
        teams: Iterable[Any] = (),
        user_id: int | None = None,
        archived: bool = False,
    ) -> None:
        """``teams``: ``{"id", "name", "primary"}`` dicts, ``(id, name, primary)`` or Teams."""
        normalised = []
        for team in teams:
            if isinstance(team, dict):
                tid, name, primary = team["id"], team["name"], team.get("primary", False)
            elif isinstance(team, tuple):
                tid, name, primary = team
            else:
                tid, name, primary = team.id, team.name, team.primary
            normalised.append({"id": str(tid), "name": name, "primary": bool(primary)})
        if user_id is None and str(id).isdigit():
            user_id = int(id) + 1_000_000
        with self._crm.lock:
            self._crm.owners[str(id)] = {
                "id": str(id),
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "user_id": user_id,
                "teams": normalised,
                "archived": archived,
                "created_at": iso(self._crm.now()),
            }

    def property_definition(self, name: str) -> dict[str, Any] | None:
        """A contact property created through the properties API (HubSpot's JSON), or None."""
        with self._crm.lock:
            found = self._crm.properties.definitions.get(name)
            return found.to_json() if found else None

    def property_group(self, name: str) -> dict[str, Any] | None:
        with self._crm.lock:
            return self._crm.properties.groups.get(name)

    @property
    def contacts(self) -> dict[str, dict[str, str | None]]:
        """Snapshot: contact id -> all properties (incl. hs_object_id, lastmodifieddate)."""
        with self._crm.lock:
            return {
                oid: o.all_properties()
                for oid, o in self._crm.objects["contacts"].items()
                if not o.archived
            }

    def created(self, kind: str) -> list[dict[str, Any]]:
        """Objects created through the API, oldest first: ``{"id", "properties", "associations"}``.

        ``kind``: tasks, notes, calls, emails, meetings, communications, contacts (or singular).
        """
        otype = kind if kind in self._crm.created_order else f"{kind}s"
        if otype not in self._crm.created_order:
            raise ValueError(f"unknown object kind {kind!r}")
        with self._crm.lock:
            out = []
            for oid in self._crm.created_order[otype]:
                o = self._crm.objects[otype][oid]
                out.append(
                    {
                        "id": oid,
                        "properties": dict(o.properties),
                        "associations": [
                            {"to_type": t, "to_id": i, "type_id": ty} for t, i, ty in o.associations
                        ],
                        "created_at": o.created_at,
                    }
                )
            return out


class FakeHubSpot(LocalServer):
    server_name = "fake-hubspot"

    def __init__(
        self,
        token: str = "test-token",
        *,
        search_cap: int = 10_000,
        rate_limit_max: int = 100,
        rate_window: float = 10.0,
        search_limit: int = 5,
        search_window: float = 1.0,
        now: Callable[[], datetime] | None = None,
        portal_id: int = 62515,
    ) -> None:
        self.token = token
        self.rate_limit_max = rate_limit_max
        self.rate_window = rate_window
        self.search_limit = search_limit
        self.search_window = search_window
        self.now = now or (lambda: datetime.now(UTC))
        self.lock = threading.RLock()
        self.default_search_cap = search_cap
        self._default_portal = portal_id
        self._enforce = False
        self.oauth = FakeOAuth()
        self.reset()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def authorize_url(self) -> str:
        """Where the browser is sent to approve an install (HubSpot: app.hubspot.com)."""
        return f"{self.base_url}/oauth/authorize"

    def reset(self) -> None:
        """Forget all data, portals, apps, tokens, recorded requests and pending faults."""
        with self.lock:
            self._enforce = False
            self.oauth.reset()
            self.portals: dict[int, FakePortal] = {}
            self.default = self.add_portal(self._default_portal, token=self.token)
            self.login_portal = self._default_portal  # the portal the browser installs into
            self.requests: list[RecordedRequest] = []
            self.errors: list[str] = []  # exceptions raised inside the fake (bugs)
            self._faults: list[Fault] = []
            self._delays: list[Fault] = []
            self._random: RandomFailures | None = None

    def add_portal(self, portal_id: int, token: str | None = None) -> FakePortal:
        """A HubSpot account (kept if it exists); ``token``: a private-app token for it."""
        with self.lock:
            portal = self.portals.get(portal_id)
            if portal is None:
                portal = self.portals[portal_id] = FakePortal(portal_id, self)
            if token is not None:
                self.oauth.access[token] = Grant(portal_id, None)
            return portal

    def portal(self, portal_id: int | None = None) -> FakePortal:
        return self.default if portal_id is None else self.portals[portal_id]

    def register_app(self, client_id: str, client_secret: str, app_id: int) -> None:
        """A public app that portals can install through OAuth."""
        with self.lock:
            self.oauth.apps[client_id] = App(client_id, client_secret, app_id)

    def uninstall(self, portal_id: int) -> None:
        """The portal removed the app: its OAuth tokens are revoked."""
        with self.lock:
            self.oauth.uninstall(portal_id)

    def expire_tokens(self, portal_id: int) -> None:
        """The portal's OAuth access tokens expire now (refresh tokens stay good)."""
        with self.lock:
            self.oauth.expire(portal_id, self.now())

    def refreshes(self, portal_id: int) -> int:
        """How many refresh-token grants the fake served for the portal."""
        with self.lock:
            return self.oauth.refreshes.get(portal_id, 0)

    @property
    def enforce_rate_limit(self) -> bool:
        """Answer 429 past the rate window or the search limit (real time, per portal)."""
        return self._enforce

    @enforce_rate_limit.setter
    def enforce_rate_limit(self, value: bool) -> None:
        with self.lock:
            self._enforce = value
            for portal in self.portals.values():
                portal.window.enforce = value

    @property
    def search_lag(self) -> float:
        """Seconds before a created object shows up in search (HubSpot: a few), by ``now``."""
        with self.lock:
            return self.default._crm.search_lag

    @search_lag.setter
    def search_lag(self, seconds: float) -> None:
        with self.lock:
            for portal in self.portals.values():
                portal._crm.search_lag = seconds

    @property
    def search_cap(self) -> int:
        return self.default._crm.search_cap

    @search_cap.setter
    def search_cap(self, value: int) -> None:
        self.default._crm.search_cap = value

    @property
    def portal_id(self) -> int:
        """The hub id of the default portal (the constructor's token)."""
        return self.default.portal_id

    @portal_id.setter
    def portal_id(self, value: int) -> None:
        with self.lock:
            old = self.default.portal_id
            self.portals[value] = self.portals.pop(old)
            self.default.portal_id = self.default._crm.portal_id = value
            for grant in self.oauth.access.values():
                if grant.portal_id == old:
                    grant.portal_id = value

    # -- the default portal's data (see FakePortal) ------------------------------------------------

    def add_contact(self, id: str, properties: dict[str, Any] | None = None, **kw: Any) -> None:
        self.default.add_contact(id, properties, **kw)

    def set_property(self, id: str, name: str, value: Any, *, at: datetime | None = None) -> None:
        self.default.set_property(id, name, value, at=at)

    def archive_contact(self, id: str) -> None:
        self.default.archive_contact(id)

    def add_owner(self, id: str, email: str | None, *args: Any, **kw: Any) -> None:
        self.default.add_owner(id, email, *args, **kw)

    @property
    def contacts(self) -> dict[str, dict[str, str | None]]:
        return self.default.contacts

    def created(self, kind: str) -> list[dict[str, Any]]:
        return self.default.created(kind)

    def property_definition(self, name: str) -> dict[str, Any] | None:
        return self.default.property_definition(name)

    def property_group(self, name: str) -> dict[str, Any] | None:
        return self.default.property_group(name)

    # -- fault injection --------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: float | str | None = None,
        path_contains: str | None = None,
        body: Any = None,
        *,
        method: str | None = None,
        apply: bool = False,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` (HubSpot-format body unless
        ``body`` is given: a dict is sent as JSON, a str as-is). ``apply=True`` processes the
        request first (the write happens, the response is lost)."""
        fault = Fault(n, path_contains, method, status, retry_after, body, apply)
        with self.lock:
            self._faults.append(fault)

    def failure_rate(
        self,
        p: float,
        statuses: tuple[int, ...] = (429, 500, 503),
        seed: int | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Fail each request with probability ``p`` (status chosen at random); ``p=0`` stops it."""
        with self.lock:
            self._random = (
                RandomFailures(p, tuple(statuses), random.Random(seed), path_contains)
                if p
                else None
            )

    def delay_next(self, n: int, seconds: float, path_contains: str | None = None) -> None:
        """Process the next ``n`` matching requests, then hold the response ``seconds``."""
        with self.lock:
            self._delays.append(Fault(n, path_contains, delay=seconds))

    # -- HTTP -------------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        arrived = time.monotonic()
        request = Request(environ)
        form = dict(request.form) if request.mimetype.endswith("x-www-form-urlencoded") else {}
        raw = "" if form else request.get_data(as_text=True)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        record = RecordedRequest(
            request.method, request.path, dict(request.args), payload, dict(request.headers)
        )
        is_search = request.path.endswith("/search")
        with self.lock:
            self.requests.append(record)
            delay = take(self._delays, request.method, request.path)
            if request.path.startswith("/oauth/"):
                status, body, headers = self._oauth(request, form)
            elif raw and payload is None:
                status, body, headers = (*error(400, "Invalid input JSON", "VALIDATION_ERROR"), {})
            else:
                status, body, headers = self._answer(request, record, is_search, arrived)
            record.status = status
            portal = self.portals.get(record.portal_id) if record.portal_id else None
            if portal is not None:
                portal.arrivals.append((arrived, is_search, status))
                if not is_search:
                    headers = {**portal.window.headers(), **headers}
        text = body if isinstance(body, str) else json.dumps(body)
        mimetype = "text/html" if isinstance(body, str) else "application/json"
        response = Response(text, status=status, headers=headers, mimetype=mimetype)
        if delay is not None:
            time.sleep(delay.delay)
        return response(environ, start_response)

    def _oauth(self, request: Request, form: dict[str, str]) -> Answer:
        path, now = request.path, self.now()
        if path == "/oauth/authorize" and request.method == "GET":
            return self.oauth.authorize(dict(request.args), self.login_portal)
        if path == "/oauth/v1/token" and request.method == "POST":
            return (*self.oauth.token(form, now), {})
        prefix = "/oauth/v1/access-tokens/"
        if path.startswith(prefix) and request.method == "GET":
            return (*self.oauth.info(path[len(prefix) :], now), {})
        return (*error(404, f"No route for {request.method} {path}", "NOT_FOUND"), {})

    def _answer(
        self, request: Request, record: RecordedRequest, is_search: bool, arrived: float
    ) -> Answer:
        auth = request.headers.get("Authorization", "")
        grant, why = self.oauth.check(auth.removeprefix("Bearer ").strip(), self.now())
        if (
            why
            or grant is None
            or not auth.startswith("Bearer ")
            or grant.portal_id not in self.portals
        ):
            if why == "expired" and grant is not None:
                record.portal_id = grant.portal_id
                message = "The OAuth token used to make this call expired 0 second(s) ago."
                return (*error(401, message, "EXPIRED_AUTHENTICATION"), {})
            return (*error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION"), {})
        portal = self.portals[grant.portal_id]
        record.portal_id = portal.portal_id
        if limited := portal.window.hit(is_search, arrived):
            return limited
        if portal.daily_limit_exhausted:
            return 429, {**DAILY_BODY, "correlationId": str(uuid.uuid4())}, {}
        fault = take(self._faults, request.method, request.path)
        if fault is None and self._random is not None:
            fault = self._random.draw(request.path)
        if fault is None or fault.apply:
            try:
                status, body = dispatch(
                    portal._crm, request.method, request.path, record.query, record.json
                )
            except Exception as exc:  # noqa: BLE001 - a fake bug must not kill the server thread
                self.errors.append(f"{request.method} {request.path}: {exc!r}")
                status, body = error(500, f"fake error: {exc!r}", "INTERNAL_ERROR")
            if fault is None:
                return status, body, {}
        return fault_reply(fault, is_search)
