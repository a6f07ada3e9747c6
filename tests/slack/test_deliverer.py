"""Delivery from the outbox: who gets it, threads, errors, and never posting twice."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from integrations.slack.client import make_client
from integrations.slack.deliverer import MAX_REFUSALS, SlackDeliverer, correlation
from integrations.slack.fake import FakeSlack
from sla_bot.clock import FrozenClock
from sla_bot.db.schema import outbox, slack_threads, slack_users
from sla_bot.outbox import deliver_due
from tests.fixtures_slack import SLACK_TEST_TOKEN, Waits
from tests.slack.conftest import OPS
from tests.slack.helpers import add_lead, queue, rows


def posts(fake: FakeSlack) -> list[dict]:
    return [m for m in fake.all_messages() if m["channel"] != OPS]


def test_nudge_is_a_dm_found_by_email_and_the_lookup_is_cached(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1")
    queue(engine, lead, clock.now(), "k2", kind="first_touch.warning", step_key="warning")
    assert deliver_due(engine, deliverer, now=clock.now()) == (2, 0)

    dm = workspace.dm_of("U0ALEX0001")
    first, second = workspace.messages(dm)
    assert "Jane Doe" in first["text"] and first["blocks"][-1]["type"] == "actions"
    assert first["metadata"]["event_payload"]["key"] == correlation("k1")
    assert second["thread_ts"] == first["ts"]  # later messages go in the thread
    assert len(workspace.calls_to("users.lookupByEmail")) == 1
    with engine.connect() as conn:
        cached = conn.execute(select(slack_users)).one()
    assert cached.user_id == "U0ALEX0001" and cached.expires_at > clock.now()
    sent = rows(engine)
    assert [r["status"] for r in sent] == ["sent", "sent"]
    assert sent[0]["result"]["ts"] == first["ts"] and sent[0]["result"]["channel"] == dm


def test_rules_slack_id_overrides_the_email_lookup(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now(), owner="1003")
    recipient = {
        "role": "owner",
        "slack": None,
        "email": "casey@example.com",
        "owner_id": "1003",
        "name": "Casey Rep",
    }
    queue(engine, lead, clock.now(), "k1", recipient=recipient)
    deliver_due(engine, deliverer, now=clock.now())
    assert workspace.calls_to("users.lookupByEmail") == []
    assert len(workspace.messages(workspace.dm_of("U0CASEY001"))) == 1


def test_unmapped_owner_falls_back_to_the_team_channel_with_a_note(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now(), owner="1009")
    recipient = {
        "role": "owner",
        "slack": None,
        "email": "ghost@example.com",
        "owner_id": "1009",
        "name": "Nobody",
    }
    queue(engine, lead, clock.now(), "k1", recipient=recipient)
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    [message] = workspace.messages("C0SALES001")
    assert "could not be found in Slack" in str(message["blocks"])
    [ops_note] = workspace.messages(OPS)
    assert "Nobody" in ops_note["text"] and "not mapped" in ops_note["text"]


def test_breach_goes_in_the_thread_and_the_first_message_shows_it(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "nudge")
    deliver_due(engine, deliverer, now=clock.now())
    clock.advance(timedelta(minutes=5))
    queue(engine, lead, clock.now(), "breach", kind="first_touch.breach", step_key="breach")
    deliver_due(engine, deliverer, now=clock.now())

    root, reply = workspace.messages(workspace.dm_of("U0ALEX0001"))
    assert reply["thread_ts"] == root["ts"] and reply["reply_broadcast"] is True
    assert "edited" in root and "Breached" in str(root["blocks"][0])
    with engine.connect() as conn:
        assert conn.execute(select(slack_threads.c.state)).scalar_one().startswith("Breached")


def test_crm_text_is_escaped_so_nobody_is_pinged(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    body = {
        "id": lead,
        "name": "<!channel> & <@U0MANAGER1>",
        "company": "<https://evil|Acme>",
        "version": 1,
        "hubspot_url": "https://app.hubspot.com/contacts/1/record/0-1/901",
    }
    queue(engine, lead, clock.now(), "k1", lead=body)
    deliver_due(engine, deliverer, now=clock.now())
    [message] = workspace.messages(workspace.dm_of("U0ALEX0001"))
    sent = message["text"] + str(message["blocks"])
    assert "<!channel>" not in sent and "<@U0MANAGER1>" not in sent and "<https://evil" not in sent
    assert "&lt;!channel&gt; &amp; &lt;@U0MANAGER1&gt;" in message["text"]


def test_permanent_error_fails_the_row_once_and_tells_ops(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    recipient = {"role": "channel", "slack": "C0GONE0001", "name": "#gone"}
    queue(engine, lead, clock.now(), "k1", recipient=recipient, kind="recycle")
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 1)
    [row] = rows(engine)
    assert row["status"] == "failed" and "channel_not_found" in row["error"]
    assert len(workspace.calls_to("chat.postMessage")) == 2  # the attempt + the ops note
    assert "failed for good" in workspace.messages(OPS)[0]["text"]


def test_a_429_takes_a_new_slot_instead_of_posting_again_in_place(
    deliverer: SlackDeliverer,
    engine: Engine,
    clock: FrozenClock,
    workspace: FakeSlack,
    slack_waits: Waits,
) -> None:
    """Posting again after Retry-After would land on the conversation's next slot (at Slack's
    pace, that post is refused in turn): the row queues for a slot of its own."""
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1")
    workspace.fail_next(1, 429, method="chat.postMessage", retry_after=2)
    refused_at = slack_waits.monotonic()
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)
    assert len(workspace.calls_to("chat.postMessage")) == 1  # not retried in place
    [row] = rows(engine)
    assert row["status"] == "pending" and row["attempts"] == 0  # a refusal costs no attempt
    assert row["result"]["slot"] >= refused_at + 2  # no earlier than Retry-After
    assert "posting" not in row["result"]  # a 429 posted nothing: no search next time
    assert row["next_attempt_at"] < clock.now() + timedelta(seconds=2)  # back before its slot
    clock.advance(timedelta(seconds=1))
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    assert slack_waits.monotonic() >= row["result"]["slot"]  # posted at its slot, not before
    assert len(workspace.messages(workspace.dm_of("U0ALEX0001"))) == 1
    assert workspace.calls_to("conversations.history") == []


def test_a_429_after_an_ambiguous_failure_keeps_the_search_for_the_next_try(
    deliverer: SlackDeliverer,
    engine: Engine,
    clock: FrozenClock,
    workspace: FakeSlack,
    slack_waits: Waits,
) -> None:
    """A 5xx may have posted (the search can lag): the 429 on the retry proves only that the
    retry posted nothing, so the next try still looks for the first one before posting."""
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1")
    workspace.fail_next(1, 500, method="chat.postMessage")
    workspace.fail_next(1, 429, method="chat.postMessage", retry_after=3)
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)
    [row] = rows(engine)
    assert row["result"]["posting"] is not None and row["attempts"] == 0
    searches = len(workspace.calls_to("conversations.history"))
    clock.advance(timedelta(seconds=3))
    slack_waits.advance(3)
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    assert len(workspace.calls_to("conversations.history")) > searches  # looked first
    assert len(workspace.messages(workspace.dm_of("U0ALEX0001"))) == 1


def test_a_message_refused_again_and_again_is_retried_as_a_counted_failure(
    deliverer: SlackDeliverer,
    engine: Engine,
    clock: FrozenClock,
    workspace: FakeSlack,
    slack_waits: Waits,
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1")
    workspace.fail_next(MAX_REFUSALS + 1, 429, method="chat.postMessage", retry_after=3)
    for refusal in range(1, MAX_REFUSALS + 1):
        assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)
        [row] = rows(engine)
        assert row["attempts"] == 0 and row["result"]["refused"] == refusal
        clock.advance(timedelta(seconds=3))
        slack_waits.advance(3)
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)
    [row] = rows(engine)
    assert row["attempts"] == 1 and row["error"] == "ratelimited"  # counted, with backoff
    assert row["status"] == "pending"


def test_long_429_reschedules_the_row_instead_of_sleeping(
    deliverer: SlackDeliverer,
    engine: Engine,
    clock: FrozenClock,
    workspace: FakeSlack,
    slack_waits: Waits,
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1")
    workspace.fail_next(1, 429, method="chat.postMessage", retry_after=40)
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)
    [row] = rows(engine)
    assert row["status"] == "pending" and row["next_attempt_at"] >= clock.now() + timedelta(
        seconds=39
    )
    assert all(s < 5 for s in slack_waits.sleeps)
    clock.advance(timedelta(seconds=40))
    slack_waits.advance(39)
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)


def test_a_slot_kept_past_its_time_is_given_up_for_a_new_one(
    deliverer: SlackDeliverer,
    engine: Engine,
    clock: FrozenClock,
    workspace: FakeSlack,
    slack_waits: Waits,
) -> None:
    """A row that comes back late would post on top of the slot after its own: it queues."""
    for n, object_id in enumerate((901, 902)):  # the second one paces on the learned DM
        queue(engine, add_lead(engine, clock.now(), object_id=object_id), clock.now(), f"k{n}")
        assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    conversation = deliverer.pacer.slots[-1][0]
    lead = add_lead(engine, clock.now(), object_id=903)
    queue(engine, lead, clock.now(), "k-late")
    stale = {"slot": slack_waits.monotonic() - 3, "slot_for": conversation}
    with engine.begin() as conn:
        conn.execute(
            update(outbox).where(outbox.c.status == "pending").values(result=json.dumps(stale))
        )
    taken = deliverer.pacer.reserve(conversation)  # the post that holds the next slot
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    assert deliverer.pacer.slots[-1] == (conversation, taken + 1.0)  # queued after it
    assert slack_waits.monotonic() >= taken + 1.0


def test_5xx_after_the_post_went_through_is_found_not_reposted(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1")
    workspace.fail_next(1, 500, method="chat.postMessage", apply=True)
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    [message] = workspace.messages(workspace.dm_of("U0ALEX0001"))
    assert rows(engine)[0]["result"]["ts"] == message["ts"]
    assert len(workspace.calls_to("conversations.history")) == 1


def test_5xx_before_the_post_is_posted_again_once(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1")
    workspace.fail_next(1, 503, method="chat.postMessage")
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    assert len(workspace.messages(workspace.dm_of("U0ALEX0001"))) == 1
    assert len(workspace.calls_to("chat.postMessage")) == 2


def test_timeout_after_slack_posted_does_not_post_twice(
    workspace: FakeSlack, engine: Engine, clock: FrozenClock, slack_waits: Waits
) -> None:
    client = make_client(SLACK_TEST_TOKEN, workspace.base_url, timeout=0.3, sleep=slack_waits.sleep)
    deliverer = SlackDeliverer(client, engine, clock=clock)
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "k1", recipient={"role": "channel", "slack": "C0SALES001"})
    workspace.delay_next(1, 0.8, method="chat.postMessage")
    deliver_due(engine, deliverer, now=clock.now())
    clock.advance(timedelta(minutes=1))
    deliver_due(engine, deliverer, now=clock.now())
    assert len(workspace.messages("C0SALES001")) == 1
    assert rows(engine)[0]["status"] == "sent"


def test_a_recorded_ts_is_never_posted_again(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "nudge")
    queue(engine, lead, clock.now(), "breach", kind="first_touch.breach", step_key="breach")
    workspace.fail_next(5, 500, method="chat.update")  # the reply posts, the root edit fails
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    clock.advance(timedelta(minutes=5))
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    assert len(workspace.calls_to("chat.postMessage")) == 2
    assert len(workspace.messages(workspace.dm_of("U0ALEX0001"))) == 2


def test_a_deleted_first_message_starts_a_new_thread(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    lead = add_lead(engine, clock.now())
    queue(engine, lead, clock.now(), "nudge")
    deliver_due(engine, deliverer, now=clock.now())
    dm = workspace.dm_of("U0ALEX0001")
    workspace.delete_message(dm, workspace.messages(dm)[0]["ts"])
    queue(engine, lead, clock.now(), "breach", kind="first_touch.breach", step_key="breach")
    assert deliver_due(engine, deliverer, now=clock.now()) == (0, 0)  # retried, not failed
    clock.advance(timedelta(minutes=5))
    assert deliver_due(engine, deliverer, now=clock.now()) == (1, 0)
    [message] = workspace.messages(dm)
    assert "thread_ts" not in message and "breached" in message["text"]
    with engine.connect() as conn:
        assert conn.execute(select(slack_threads.c.ts)).scalar_one() == message["ts"]


def test_users_cache_expires_and_is_asked_again(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    directory = deliverer.directory
    assert directory.lookup_email("ALEX@example.com", now=clock.now()) == "U0ALEX0001"
    assert directory.lookup_email("nobody@example.com", now=clock.now()) is None
    clock.advance(timedelta(hours=2))  # the miss expired, the hit did not
    directory.lookup_email("alex@example.com", now=clock.now())
    directory.lookup_email("nobody@example.com", now=clock.now())
    assert len(workspace.calls_to("users.lookupByEmail")) == 3
    clock.advance(timedelta(hours=23))
    directory.lookup_email("alex@example.com", now=clock.now())
    assert len(workspace.calls_to("users.lookupByEmail")) == 4
