"""Pytest fixtures for HubSpot: a fake HubSpot server and a client wired to it.

Loaded for the whole suite through ``pytest_plugins`` in ``tests/conftest.py``.

* ``fake_hubspot`` - a :class:`~integrations.hubspot.fake.FakeHubSpot`, empty for each test (one
  server per session, ``reset()`` before every test).
* ``hubspot_clock`` - the :class:`~integrations.hubspot.fake.ManualClock` behind the client's
  ``sleep``/``monotonic``: sleeps are recorded in ``hubspot_clock.sleeps`` and never block.
* ``hubspot_client`` - a :class:`~integrations.hubspot.client.HubSpotClient` pointed at the fake
  (token ``HUBSPOT_TEST_TOKEN``, seeded jitter).
* ``make_hubspot_client`` - factory for clients with other settings (``timeout``,
  ``max_retries``...); same clock unless ``sleep``/``monotonic`` are given; closed at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import Random
from typing import Any

import pytest

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.fake import FakeHubSpot, ManualClock

HUBSPOT_TEST_TOKEN = "pat-na1-test-token-0000"


@pytest.fixture(scope="session")
def _fake_hubspot_server() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(token=HUBSPOT_TEST_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_hubspot(_fake_hubspot_server: FakeHubSpot) -> FakeHubSpot:
    _fake_hubspot_server.token = HUBSPOT_TEST_TOKEN
    _fake_hubspot_server.reset()
    return _fake_hubspot_server


@pytest.fixture
def hubspot_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_hubspot_client(
    fake_hubspot: FakeHubSpot, hubspot_clock: ManualClock
) -> Iterator[Callable[..., HubSpotClient]]:
    clients: list[HubSpotClient] = []

    def make(**overrides: Any) -> HubSpotClient:
        settings: dict[str, Any] = {
            "base_url": fake_hubspot.base_url,
            "sleep": hubspot_clock.sleep,
            "monotonic": hubspot_clock.monotonic,
            "timeout": (2.0, 5.0),
            "rng": Random(1234),
        }
        settings.update(overrides)
        client = HubSpotClient(settings.pop("access_token", HUBSPOT_TEST_TOKEN), **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def hubspot_client(make_hubspot_client: Callable[..., HubSpotClient]) -> HubSpotClient:
    return make_hubspot_client()
