"""The fake Slack answers like Slack does, so tests against it mean something."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from integrations.slack.client import make_client
from integrations.slack.fake import FakeSlack
from sla_bot.clock import FrozenClock
from tests.fixtures_slack import Waits


def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as caught:
        call()  # type: ignore[operator]
    return str(caught.value.response["error"])


def test_wrong_token_is_invalid_auth(workspace: FakeSlack, slack_waits: Waits) -> None:
    client = make_client("xoxb-wrong", workspace.base_url, sleep=slack_waits.sleep)
    assert error_of(lambda: client.auth_test()) == "invalid_auth"


def test_posting_to_a_user_id_is_channel_not_found_use_conversations_open(
    workspace: FakeSlack, slack_client: WebClient
) -> None:
    assert error_of(lambda: slack_client.chat_postMessage(channel="U0ALEX0001", text="x")) == (
        "channel_not_found"
    )
    dm = slack_client.conversations_open(users="U0ALEX0001")["channel"]["id"]
    assert dm.startswith("D") and slack_client.chat_postMessage(channel=dm, text="x")["ok"]


def test_lookup_miss_is_users_not_found(workspace: FakeSlack, slack_client: WebClient) -> None:
    assert error_of(lambda: slack_client.users_lookupByEmail(email="no@x.test")) == (
        "users_not_found"
    )


def test_history_shows_metadata_only_when_asked_and_hides_thread_replies(
    workspace: FakeSlack, slack_client: WebClient
) -> None:
    meta = {"event_type": "t", "event_payload": {"key": "k"}}
    root = slack_client.chat_postMessage(channel="#sales-escalations", text="a", metadata=meta)
    slack_client.chat_postMessage(channel=root["channel"], text="b", thread_ts=root["ts"])
    plain = slack_client.conversations_history(channel=root["channel"])["messages"]
    assert [m["text"] for m in plain] == ["a"] and "metadata" not in plain[0]
    full = slack_client.conversations_history(channel=root["channel"], include_all_metadata=True)
    assert full["messages"][0]["metadata"] == meta
    replies = slack_client.conversations_replies(channel=root["channel"], ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == ["a", "b"]


def test_update_needs_an_id_and_an_existing_message(
    workspace: FakeSlack, slack_client: WebClient
) -> None:
    posted = slack_client.chat_postMessage(channel="C0SALES001", text="a")
    assert error_of(
        lambda: slack_client.chat_update(channel="#sales-escalations", ts=posted["ts"], text="b")
    ) == ("channel_not_found")
    assert error_of(lambda: slack_client.chat_update(channel="C0SALES001", ts="1.2", text="b")) == (
        "message_not_found"
    )


def test_injected_api_error_and_expired_trigger(
    workspace: FakeSlack, slack_client: WebClient
) -> None:
    workspace.fail_next(1, 200, method="chat.postMessage", error="is_archived")
    assert error_of(lambda: slack_client.chat_postMessage(channel="C0SALES001", text="a")) == (
        "is_archived"
    )
    workspace.expire_trigger("t1")
    view = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
    assert error_of(lambda: slack_client.views_open(trigger_id="t1", view=view)) == (
        "expired_trigger_id"
    )
    assert workspace.calls_to("views.open")[0].applied is False


def test_delay_makes_the_client_time_out_after_the_post_landed(
    workspace: FakeSlack, slack_waits: Waits
) -> None:
    client = make_client("xoxb-fake", workspace.base_url, timeout=0.2, sleep=slack_waits.sleep)
    workspace.delay_next(1, 0.6, method="chat.postMessage")
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C0SALES001", text="a")
    assert len(workspace.messages("C0SALES001")) == 1


def test_channel_rate_limit_answers_429_with_retry_after_per_conversation(
    workspace: FakeSlack, slack_client: WebClient, clock: FrozenClock
) -> None:
    from datetime import timedelta

    workspace.limit_channel_rate(interval=1.0, burst=2)
    assert slack_client.chat_postMessage(channel="C0SALES001", text="1")["ok"]
    assert slack_client.chat_postMessage(channel="C0SALES001", text="2")["ok"]
    with pytest.raises(SlackApiError) as caught:
        slack_client.chat_postMessage(channel="#sales-escalations", text="3")  # same, by name
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    dm = slack_client.conversations_open(users="U0ALEX0001")["channel"]["id"]
    assert slack_client.chat_postMessage(channel=dm, text="other conversation")["ok"]
    clock.advance(timedelta(seconds=1))  # one more token: one more message, not two
    assert slack_client.chat_postMessage(channel="C0SALES001", text="3")["ok"]
    with pytest.raises(SlackApiError):
        slack_client.chat_postMessage(channel="C0SALES001", text="4")
    texts = [m["text"] for m in workspace.messages("C0SALES001")]
    assert texts == ["1", "2", "3"]
    assert [c.at for c in workspace.calls_to("chat.postMessage")][-1] == clock.now().timestamp()
