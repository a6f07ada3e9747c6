"""Retry policy of the WebClient factory, and per-conversation pacing (fake time, no sleeping)."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine

from integrations.slack.client import make_client, paced_call
from integrations.slack.deliverer import SlackDeliverer
from integrations.slack.fake import FakeSlack
from integrations.slack.pacing import ChannelPacer
from sla_bot.clock import FrozenClock
from sla_bot.outbox import deliver_parallel
from tests.fixtures_slack import SLACK_TEST_TOKEN, Waits
from tests.slack.helpers import add_lead, queue, rows


def test_idempotent_calls_are_retried_on_5xx_with_bounded_backoff(
    workspace: FakeSlack, slack_client: WebClient, slack_waits: Waits
) -> None:
    workspace.fail_next(3, 503, method="users.lookupByEmail")
    user = slack_client.users_lookupByEmail(email="alex@example.com")["user"]["id"]
    assert user == "U0ALEX0001"
    assert len(workspace.calls_to("users.lookupByEmail")) == 4
    assert len(slack_waits.sleeps) == 3 and all(0 < s <= 5 for s in slack_waits.sleeps)


def test_post_message_is_not_blindly_retried_on_5xx(
    workspace: FakeSlack, slack_client: WebClient
) -> None:
    workspace.fail_next(1, 500, method="chat.postMessage")
    with pytest.raises(SlackApiError) as caught:
        slack_client.chat_postMessage(channel="C0SALES001", text="hi")
    assert caught.value.response.status_code == 500
    assert len(workspace.calls_to("chat.postMessage")) == 1


def test_long_retry_after_is_left_to_the_caller(
    workspace: FakeSlack, slack_client: WebClient, slack_waits: Waits
) -> None:
    workspace.fail_next(1, 429, method="chat.postMessage", retry_after=30)
    with pytest.raises(SlackApiError) as caught:
        slack_client.chat_postMessage(channel="C0SALES001", text="hi")
    assert caught.value.response.headers["Retry-After"] == "30"
    assert slack_waits.sleeps == []


def test_refused_connection_is_retried_even_for_posts(slack_waits: Waits) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = make_client(SLACK_TEST_TOKEN, f"http://127.0.0.1:{port}/", sleep=slack_waits.sleep)
    with pytest.raises(OSError):
        client.chat_postMessage(channel="C0SALES001", text="hi")
    assert len(slack_waits.sleeps) == 3


def test_pacer_spaces_one_channel_and_leaves_others_alone(slack_waits: Waits) -> None:
    pacer = ChannelPacer(1.0, monotonic=slack_waits.monotonic, sleep=slack_waits.sleep)
    waited = [pacer.wait("C1"), pacer.wait("C1"), pacer.wait("D1"), pacer.wait("C1")]
    assert waited == [0.0, 1.0, 0.0, 1.0]
    assert [t for c, t in pacer.slots if c == "C1"] == [1000.0, 1001.0, 1002.0]


def test_parallel_delivery_paces_the_channel_but_not_the_dms(
    workspace: FakeSlack,
    slack_client: WebClient,
    engine: Engine,
    clock: FrozenClock,
    slack_waits: Waits,
) -> None:
    # Time moves only between runs (a sleeping thread does not move it for the others).
    pacer = ChannelPacer(monotonic=slack_waits.monotonic, sleep=lambda seconds: None)
    deliverer = SlackDeliverer(slack_client, engine, clock=clock, pacer=pacer)
    reps = ["alex@example.com", "casey@example.com", "sam@example.com", "admin@example.com"]
    for n in range(6):
        lead = add_lead(engine, clock.now(), object_id=n)
        queue(
            engine, lead, clock.now(), f"c{n}", recipient={"role": "channel", "slack": "C0SALES001"}
        )
        if n < len(reps):
            queue(
                engine,
                lead,
                clock.now(),
                f"d{n}",
                recipient={"role": "owner", "email": reps[n], "name": reps[n]},
            )
    sent = deliver_parallel(engine, deliverer, now=clock.now(), workers=4, batch=2)[0]
    first = {r["idempotency_key"]: r["status"] for r in rows(engine)}
    # The DMs did not wait behind the channel: all went in the first run, with the channel's
    # first slots; the rest of the channel waits in the outbox (deferred), not in a thread.
    assert all(first[f"d{n}"] == "sent" for n in range(4))
    assert 1 <= sum(first[f"c{n}"] == "sent" for n in range(6)) < 6
    for _ in range(30):
        if sent == 10:
            break
        clock.advance(timedelta(seconds=1))
        slack_waits.sleep(1.0)
        sent += deliver_parallel(engine, deliverer, now=clock.now(), workers=4, batch=2)[0]
    assert sent == 10
    channel = sorted(t for c, t in pacer.slots if c == "C0SALES001")
    assert len(channel) == 6  # one slot per message: a deferred row keeps the slot it reserved
    assert all(b - a >= 1.0 for a, b in zip(channel, channel[1:], strict=False))
    dms = [c for c, _ in pacer.slots if c.startswith("D")]
    assert len(set(dms)) == 4  # one slot each: no DM waited behind another
    assert all(r["status"] == "sent" for r in rows(engine))
    assert all(r["attempts"] == 1 for r in rows(engine))  # waiting for a slot is no attempt
    posts = [c for c in workspace.calls_to("chat.postMessage") if c.error is None]
    assert len(posts) == 10


def test_a_paced_post_is_not_retried_in_place_on_a_short_429(
    workspace: FakeSlack, slack_client: WebClient, slack_waits: Waits
) -> None:
    workspace.fail_next(1, 429, method="chat.postMessage", retry_after=1)
    with paced_call(), pytest.raises(SlackApiError) as caught:
        slack_client.chat_postMessage(channel="C0SALES001", text="hi")
    assert caught.value.response.status_code == 429 and slack_waits.sleeps == []
    workspace.fail_next(1, 429, method="chat.postMessage", retry_after=1)
    slack_client.chat_postMessage(channel="C0SALES001", text="hi")  # unpaced: waited, retried
    assert len(slack_waits.sleeps) == 1 and len(workspace.messages("C0SALES001")) == 1
