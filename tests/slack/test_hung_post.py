"""A hung post holds up only its own message: another message to the same conversation goes out
meanwhile (no lock is held across the call; the old code held one per conversation)."""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy.engine import Engine

from integrations.slack.deliverer import SlackDeliverer, correlation
from integrations.slack.fake import FakeSlack
from sla_bot.clock import FrozenClock
from sla_bot.outbox import deliver_parallel
from tests.slack.helpers import add_lead, queue, rows


def test_another_message_to_the_conversation_goes_out_while_a_post_hangs(
    deliverer: SlackDeliverer, engine: Engine, clock: FrozenClock, workspace: FakeSlack
) -> None:
    first, second = (add_lead(engine, clock.now(), object_id=n) for n in (901, 902))
    queue(engine, first, clock.now(), "first")
    queue(engine, second, clock.now(), "second")  # to the same rep's DM
    workspace.delay_next(1, 1.5, method="chat.postMessage")  # the first post's answer hangs
    run = threading.Thread(
        target=deliver_parallel, args=(engine, deliverer), kwargs={"now": clock.now(), "workers": 2}
    )
    run.start()
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30  # bounded: the fake holds the answer 1.5 s
    while ("sent" not in seen.values()) and time.monotonic() < deadline:
        seen = {r["idempotency_key"]: r["status"] for r in rows(engine)}
        time.sleep(0.02)
    run.join(timeout=30)

    (hung,) = [c for c in workspace.calls_to("chat.postMessage") if c.held]
    meta = hung.args["metadata"]
    meta = json.loads(meta) if isinstance(meta, str) else meta
    hung_key = next(k for k in seen if correlation(k) == meta["event_payload"]["key"])
    other = next(k for k in seen if k != hung_key)
    assert (seen[hung_key], seen[other]) == ("pending", "sent")  # the other did not wait
    assert {r["status"] for r in rows(engine)} == {"sent"}
    assert len(workspace.messages(workspace.dm_of("U0ALEX0001") or "")) == 2
