"""Outbound HubSpot adapter on ``hubspot-api-client`` 12.

Transport: the SDK's generated APIs, pointed at ``base_url`` with ``HubSpot(host=...)``, built
with ``retry=False`` (exactly one HTTP attempt per SDK call, raw urllib3 exceptions) and given
``_request_timeout=timeout`` on every call (the SDK has no client-wide timeout). Every endpoint we
use exists in the SDK, so ``api_request`` (which ignores retry config) is not used.

Around each call (see the modules for details):

* :mod:`~integrations.hubspot.retry` - our retry loop: full-jitter backoff, ``Retry-After``
  honoured, up to ``max_retries`` retries, then :class:`TransientHubSpotError`; 4xx other than
  408/423/429 raise :class:`PermanentHubSpotError` at once with HubSpot's message, category and
  correlation id. POST and PATCH are retried like GET.
* :mod:`~integrations.hubspot.ratelimit` - two client-side limiters: general (default 100 / 10 s)
  and search (default 4 / 1 s; HubSpot allows 5 / s and counts search separately). A worker
  passes budgets shared through the database instead (``limiter=``, ``search_limiter=``), so
  N worker processes do not spend N budgets (:mod:`sla_bot.portals.budget`).
* the token is a string (private app) or a :class:`~integrations.hubspot.retry.TokenSource`
  (OAuth): read before every attempt, renewed once when HubSpot answers 401.
* :mod:`~integrations.hubspot.idempotency` - creates (task, note, touch) are made idempotent with
  an idempotency-key marker in the body; an ambiguous failure is raised, never re-sent inline
  (the outbox searches for the marker once the search index has caught up).
* ``fence=`` on writes: called right before the request goes out (the outbox's lease check).
* :mod:`~integrations.hubspot.search` - "modified since" iteration by keyset paging on
  ``lastmodifieddate``, which never reaches the search API's 10,000-result cap.

Tests inject ``sleep`` and ``monotonic`` together (``fake.ManualClock``) and never really sleep.
The access token is only handed to the SDK; it never appears in logs, errors or ``repr``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from random import Random
from typing import Any, Literal

from hubspot import HubSpot

from integrations.hubspot import engagements as eng
from integrations.hubspot.errors import HubSpotError, PermanentHubSpotError
from integrations.hubspot.idempotency import IdempotentCreator
from integrations.hubspot.models import Contact, Owner, contact_from_sdk, epoch_ms, owner_from_sdk
from integrations.hubspot.ratelimit import RateLimiter, SlidingWindowRateLimiter
from integrations.hubspot.retry import Retrier, RetryPolicy, TokenSource
from integrations.hubspot.search import (
    CREATED,
    MODIFIED,
    SearchPage,
    created_ms,
    iter_modified,
    lastmodified_ms,
)

BATCH_LIMIT = 100
_CAMEL = {"field_type": "fieldType", "group_name": "groupName", "display_order": "displayOrder"}


def _camel(data: Mapping[str, Any]) -> dict[str, Any]:
    """SDK model dicts (snake_case) in HubSpot's JSON names, as the rest of the code speaks."""
    out = {_CAMEL.get(k, k): v for k, v in data.items()}
    if isinstance(out.get("options"), list):
        out["options"] = [_camel(o) if isinstance(o, Mapping) else o for o in out["options"]]
    return out


def _snake(data: Mapping[str, Any]) -> dict[str, Any]:
    """HubSpot's JSON names for an SDK model's keyword arguments (options become OptionInput)."""
    from hubspot.crm.properties import OptionInput

    reverse = {v: k for k, v in _CAMEL.items()}
    out = {reverse.get(k, k): v for k, v in data.items()}
    if "options" in out:
        out["options"] = [
            OptionInput(**{reverse.get(k, k): v for k, v in option.items()})
            for option in out["options"]
        ]
    return out


class HubSpotClient:
    def __init__(
        self,
        access_token: str | TokenSource,
        *,
        base_url: str = "https://api.hubapi.com",
        timeout: tuple[float, float] = (3.05, 10.0),
        max_retries: int = 5,
        rate_limit: tuple[int, float] = (100, 10.0),
        search_rate_limit: tuple[int, float] = (4, 1.0),
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 60.0,
        search_page_size: int = 200,
        rng: Random | None = None,
        limiter: RateLimiter | None = None,
        search_limiter: RateLimiter | None = None,
        on_daily_limit: Callable[[HubSpotError], None] | None = None,
    ) -> None:
        if not access_token:
            raise ValueError("access_token is required")
        self._source = None if isinstance(access_token, str) else access_token
        self._token = access_token if isinstance(access_token, str) else ""
        if not 1 <= search_page_size <= 200:
            raise ValueError("search_page_size must be 1..200")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._page_size = search_page_size
        self._sdk = HubSpot(
            access_token=self._token or "-",
            host=self.base_url,
            retry=False,
            connection_pool_maxsize=8,
        )
        self._limiter = limiter or SlidingWindowRateLimiter(
            *rate_limit, monotonic=monotonic, sleep=sleep, name="hubspot"
        )
        self._search_limiter = search_limiter or SlidingWindowRateLimiter(
            *search_rate_limit, monotonic=monotonic, sleep=sleep, name="hubspot-search"
        )
        policy = RetryPolicy(max_retries, backoff_base, backoff_cap, max_retry_after)
        self._retrier = Retrier(
            policy,
            sleep=sleep,
            rng=rng,
            authorize=self._authorize if self._source is not None else None,
            renew=self._source.renew if self._source is not None else None,
            on_daily_limit=on_daily_limit,
        )
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._creator = IdempotentCreator(
            api=self._api,
            retrier=self._retrier,
            limiter=self._limiter,
            search=self._search,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={self.base_url!r})"

    # -- plumbing -------------------------------------------------------------------------------

    def _authorize(self) -> str:
        """Put the source's current token on every SDK API (only when it changed)."""
        assert self._source is not None
        token = self._source.current()
        with self._lock:
            if token != self._token:
                self._token = token
                for api in self._apis.values():
                    api.api_client.configuration.access_token = token
        return token

    def _api(self, name: str) -> Any:
        """Cached SDK API object: "contacts.batch", "tasks.search", "owners"...

        Every SDK discovery access builds a new ApiClient and connection pool, so build once.
        """
        with self._lock:
            api = self._apis.get(name)
            if api is None:
                crm = self._sdk.crm
                group, _, which = name.partition(".")
                if group == "owners":
                    api = crm.owners.owners_api
                elif group == "properties":  # "properties.core", "properties.groups"
                    api = getattr(crm.properties, f"{which}_api")
                else:
                    disc = crm.contacts if group == "contacts" else getattr(crm.objects, group)
                    api = getattr(disc, f"{which}_api")
                api.api_client.configuration.access_token = self._token or "-"
                self._apis[name] = api
            return api

    def _call(
        self,
        operation: str,
        fn: Callable[..., Any],
        *args: Any,
        fence: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> Any:
        kwargs["_request_timeout"] = self.timeout
        return self._retrier.call(
            operation, lambda: fn(*args, **kwargs), limiter=self._limiter, fence=fence
        )

    def _search(self, operation: str, api: Any, request: dict[str, Any]) -> Any:
        def attempt() -> Any:
            return api.do_search(
                public_object_search_request=request, _request_timeout=self.timeout
            )

        return self._retrier.call(operation, attempt, limiter=self._search_limiter)

    def close(self) -> None:
        """Close the SDK connection pools (they are rebuilt if the client is used again)."""
        with self._lock:
            apis, self._apis = list(self._apis.values()), {}
        for api in apis:
            api.api_client.close()
            api.api_client.rest_client.pool_manager.clear()

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- contacts -------------------------------------------------------------------------------

    def batch_read_contacts(
        self, ids: Sequence[str], properties: Sequence[str]
    ) -> dict[str, Contact]:
        """Contacts by id, in calls of <= 100 ids. Ids HubSpot does not know are simply absent.

        A 207 whose errors are all OBJECT_NOT_FOUND is a normal partial answer; any other batch
        error raises PermanentHubSpotError (better than silently treating a contact as gone).
        """
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        unique = list(dict.fromkeys(str(i) for i in ids))  # HubSpot rejects duplicate inputs
        api = self._api("contacts.batch")
        found: dict[str, Contact] = {}
        for start in range(0, len(unique), BATCH_LIMIT):
            chunk = unique[start : start + BATCH_LIMIT]
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in chunk], properties=list(properties)
            )
            resp = self._call(
                "batch read contacts", api.read, batch_read_input_simple_public_object_id=body
            )
            for error in getattr(resp, "errors", None) or ():
                if error.category != "OBJECT_NOT_FOUND":
                    raise PermanentHubSpotError(
                        error.message or "batch read error",
                        category=error.category,
                        operation="batch read contacts",
                    )
            for obj in resp.results or ():
                contact = contact_from_sdk(obj)
                found[contact.id] = contact
        return found

    def get_contact(self, contact_id: str, properties: Sequence[str]) -> Contact | None:
        """One contact, or None on 404."""
        api = self._api("contacts.basic")
        try:
            obj = self._call("get contact", api.get_by_id, contact_id, properties=list(properties))
        except PermanentHubSpotError as err:
            if err.status == 404:
                return None
            raise
        return contact_from_sdk(obj)

    def update_contact(
        self,
        contact_id: str,
        properties: Mapping[str, str],
        *,
        fence: Callable[[], object] | None = None,
    ) -> None:
        """PATCH contact properties. Idempotent, so retried on any transient failure."""
        from hubspot.crm.contacts import SimplePublicObjectInput

        values = {k: "" if v is None else str(v) for k, v in properties.items()}
        body = SimplePublicObjectInput(properties=values)
        api = self._api("contacts.basic")
        self._call(
            "update contact", api.update, contact_id, simple_public_object_input=body, fence=fence
        )

    def search_contacts_modified_since(
        self, since: datetime, until: datetime, properties: Sequence[str]
    ) -> Iterator[Contact]:
        """Contacts with ``since <= lastmodifieddate < until``, ascending, lazily paged.

        Keyset paging (see :mod:`integrations.hubspot.search`): no 10,000-result cap, no skips
        when contacts change mid-walk; a contact may be yielded twice. The search index lags by
        seconds: poll with ``until`` a little in the past.
        """
        return self._search_window(since, until, properties, MODIFIED, lastmodified_ms)

    def search_contacts_created(
        self, since: datetime, until: datetime, properties: Sequence[str]
    ) -> Iterator[Contact]:
        """Contacts with ``since <= createdate < until``, ascending, lazily paged (keyset
        paging as above; a contact is never yielded twice, as createdate does not move)."""
        return self._search_window(since, until, properties, CREATED, created_ms)

    def _search_window(
        self,
        since: datetime,
        until: datetime,
        properties: Sequence[str],
        prop: str,
        value_ms: Callable[[Contact], int],
    ) -> Iterator[Contact]:
        since_ms, until_ms = epoch_ms(since), epoch_ms(until)
        props = list(dict.fromkeys([*properties, prop]))
        api = self._api("contacts.search")

        def fetch(filters: list[dict[str, Any]], sort: str, limit: int) -> SearchPage:
            request = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "properties": props,
                "limit": limit,
            }
            resp = self._search("search contacts", api, request)
            nxt = resp.paging.next if resp.paging else None
            results = [contact_from_sdk(r) for r in resp.results or ()]
            return SearchPage(results, bool(nxt and nxt.after), resp.total)

        return iter_modified(
            fetch, since_ms, until_ms, page_size=self._page_size, modified_ms=value_ms, prop=prop
        )

    # -- owners ---------------------------------------------------------------------------------

    def get_owner(self, owner_id: str) -> Owner | None:
        """The active owner; else the archived (deactivated) one (``archived=True``); else None."""
        api = self._api("owners")
        for archived in (False, True):
            try:
                obj = self._call(
                    "get owner", api.get_by_id, str(owner_id), id_property="id", archived=archived
                )
            except PermanentHubSpotError as err:
                if err.status == 404:
                    continue
                raise
            return owner_from_sdk(obj)
        return None

    def find_owner_by_email(self, email: str) -> Owner | None:
        """The active owner with this email (e.g. to map a Slack user), or None."""
        api = self._api("owners")
        page = self._call("find owner", api.get_page, email=email, limit=1, archived=False)
        return owner_from_sdk(page.results[0]) if page.results else None

    # -- account ------------------------------------------------------------------------------

    def get_portal_id(self) -> int:
        """The portal (hub) id the token belongs to, from ``GET /account-info/v3/details``.

        The SDK has no account-info API, so this goes through a generated ``ApiClient`` (same
        pool, timeout and error classes as every other call) rather than ``api_request``.
        """
        api_client = self._api("contacts.basic").api_client

        def attempt() -> Any:
            return api_client.call_api(
                "/account-info/v3/details",
                "GET",
                header_params={"Accept": "application/json"},
                response_types_map={200: "object"},
                auth_settings=["oauth2"],
                _return_http_data_only=True,
                _request_timeout=self.timeout,
            )

        details = self._retrier.call("get account details", attempt, limiter=self._limiter)
        portal = details.get("portalId") if isinstance(details, dict) else None
        if not isinstance(portal, int) or isinstance(portal, bool):
            raise PermanentHubSpotError(
                "account details without a portalId", operation="get account details"
            )
        return portal

    # -- property definitions (the CRM properties API; scope crm.schemas.contacts.write) -------

    def _maybe(self, operation: str, fn: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
        """The definition as a dict (HubSpot's camelCase names), or None on 404."""
        try:
            found = self._call(operation, fn, *args)
        except PermanentHubSpotError as err:
            if err.status == 404:
                return None
            raise
        return _camel(found.to_dict())

    def get_property_group(self, object_type: str, name: str) -> dict[str, Any] | None:
        api = self._api("properties.groups")
        return self._maybe("get property group", api.get_by_name, object_type, name)

    def create_property_group(
        self, object_type: str, name: str, label: str, display_order: int = -1
    ) -> dict[str, Any]:
        """Create a property group; PermanentHubSpotError 409 if it exists."""
        from hubspot.crm.properties import PropertyGroupCreate

        body = PropertyGroupCreate(name=name, label=label, display_order=display_order)
        api = self._api("properties.groups")
        created = self._call(
            "create property group", api.create, object_type, property_group_create=body
        )
        return _camel(created.to_dict())

    def get_property(self, object_type: str, name: str) -> dict[str, Any] | None:
        api = self._api("properties.core")
        return self._maybe("get property", api.get_by_name, object_type, name)

    def create_property(self, object_type: str, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create a property from HubSpot's JSON definition; PermanentHubSpotError 409 if it
        exists."""
        from hubspot.crm.properties import PropertyCreate

        body = PropertyCreate(**_snake(definition))
        api = self._api("properties.core")
        created = self._call("create property", api.create, object_type, property_create=body)
        return _camel(created.to_dict())

    def update_property(
        self, object_type: str, name: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a property's label, description, group or options (not its type)."""
        from hubspot.crm.properties import PropertyUpdate

        body = PropertyUpdate(**_snake(changes))
        api = self._api("properties.core")
        updated = self._call("update property", api.update, object_type, name, property_update=body)
        return _camel(updated.to_dict())

    # -- idempotent creates (see integrations.hubspot.idempotency) ------------------------------

    def create_task(
        self,
        contact_id: str,
        *,
        subject: str,
        body: str,
        owner_id: str | None,
        due: datetime,
        idempotency_key: str,
        fence: Callable[[], object] | None = None,
    ) -> str:
        """A NOT_STARTED TODO task due at ``due``, associated to the contact; returns its id."""
        token = eng.idempotency_token(idempotency_key)
        props = eng.task_properties(
            subject=subject, body=body, owner_id=owner_id, due=due, token=token
        )
        return self._creator.create(eng.TASK, contact_id, props, token, fence)

    def create_note(
        self,
        contact_id: str,
        *,
        body: str,
        owner_id: str | None,
        at: datetime,
        idempotency_key: str,
        fence: Callable[[], object] | None = None,
    ) -> str:
        """A note on the contact (does not make it "contacted"); returns its id."""
        token = eng.idempotency_token(idempotency_key)
        props = eng.note_properties(body=body, owner_id=owner_id, at=at, token=token)
        return self._creator.create(eng.NOTE, contact_id, props, token, fence)

    def create_engagement(
        self,
        contact_id: str,
        *,
        kind: Literal["call", "email", "meeting", "linkedin", "voicemail"],
        outcome: Literal["attempt", "connect"],
        note: str,
        owner_id: str | None,
        at: datetime,
        idempotency_key: str,
        fence: Callable[[], object] | None = None,
    ) -> str:
        """Log a touch (mapping in :mod:`integrations.hubspot.engagements`); returns its id."""
        token = eng.idempotency_token(idempotency_key)
        spec, props = eng.touch_properties(
            kind, outcome, note=note, owner_id=owner_id, at=at, token=token
        )
        return self._creator.create(spec, contact_id, props, token, fence)

    def find_by_idempotency_token(self, object_type: str, token: str) -> str | None:
        """Id of the ``object_type`` ("tasks", "calls"...) object created with ``token``."""
        return self._creator.find(object_type, token)
