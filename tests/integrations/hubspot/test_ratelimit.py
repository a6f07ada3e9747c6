"""Client-side rate limiting, with a manual clock: no real sleeping."""

from __future__ import annotations

import threading

import pytest

from integrations.hubspot.fake import ManualClock, max_in_any_window
from integrations.hubspot.ratelimit import SlidingWindowRateLimiter


def test_250_grants_never_exceed_100_per_10_seconds():
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(100, 10.0, monotonic=clock.monotonic, sleep=clock.sleep)

    grants = [limiter.acquire() for _ in range(250)]

    assert max_in_any_window(grants, 10.0) == 100
    start = grants[0]
    assert grants[99] == start and grants[100] == start + 10 and grants[200] == start + 20
    assert sum(clock.sleeps) == pytest.approx(20.0)


def test_limiter_is_thread_safe():
    clock = ManualClock()
    limiter = SlidingWindowRateLimiter(10, 1.0, monotonic=clock.monotonic, sleep=clock.sleep)
    grants: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            t = limiter.acquire()
            with lock:
                grants.append(t)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(grants) == 200
    assert max_in_any_window(grants, 1.0) <= 10


def test_pause_holds_every_caller_back():
    clock = ManualClock(start=0.0)
    limiter = SlidingWindowRateLimiter(100, 10.0, monotonic=clock.monotonic, sleep=clock.sleep)

    limiter.pause(4.0)

    assert limiter.acquire() == 4.0
    assert limiter.in_window() == 1


def test_limiter_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        SlidingWindowRateLimiter(0, 10.0)


def test_client_spreads_250_calls_over_the_window(fake_hubspot, hubspot_client, hubspot_clock):
    fake_hubspot.add_owner("5", "rep@example.com")

    times = []
    for _ in range(250):
        assert hubspot_client.get_owner("5") is not None
        times.append(hubspot_clock.monotonic())  # the clock only moves while the limiter waits

    assert len(fake_hubspot.requests) == 250
    assert max_in_any_window(times, 10.0) == 100
    assert times[-1] - times[0] == pytest.approx(20.0)


def test_configured_rate_limit_is_used(fake_hubspot, make_hubspot_client, hubspot_clock):
    client = make_hubspot_client(rate_limit=(3, 1.0))
    fake_hubspot.add_owner("5", "rep@example.com")

    for _ in range(7):
        client.get_owner("5")

    assert hubspot_clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]
