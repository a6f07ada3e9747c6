"""Which of a lead's messages went out in a batch (noise control), for `lead show`.

The Slack side records each batched row in `slack_batch_items`; this reads it back as one line
per message, e.g. "ladder.2 to manager:U0SAM: sent in batch #3 with 4 other leads".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from sla_bot.db.schema import outbox, slack_batch_items, slack_batches


def batch_lines(conn: Connection, lead_id: int) -> list[dict[str, Any]]:
    """The lead's batched messages: step, recipient, batch id, the other leads, held back."""
    rows = conn.execute(
        select(
            outbox.c.step,
            outbox.c.recipient,
            slack_batch_items.c.batch_id,
            slack_batch_items.c.folded,
            slack_batches.c.post_at,
            slack_batches.c.ts,
        )
        .join(slack_batch_items, slack_batch_items.c.outbox_id == outbox.c.id)
        .join(slack_batches, slack_batches.c.id == slack_batch_items.c.batch_id)
        .where(outbox.c.lead_id == lead_id)
        .order_by(outbox.c.id)
    ).all()
    ids = {r.batch_id for r in rows}
    counts = dict(
        conn.execute(
            select(slack_batch_items.c.batch_id, func.count())
            .where(slack_batch_items.c.batch_id.in_(ids))
            .group_by(slack_batch_items.c.batch_id)
        ).all()
    )
    out = []
    for r in rows:
        others = int(counts.get(r.batch_id, 1)) - 1
        state = "sent" if r.ts else f"to be sent at {r.post_at.isoformat()}"
        text = f"{r.step} to {r.recipient}: {state} in batch #{r.batch_id} with {others} other"
        text += " lead" if others == 1 else " leads"
        if r.folded:
            text += " (held back by the hourly cap)"
        out.append({"step": r.step, "batch": r.batch_id, "others": others, "text": text})
    return out
