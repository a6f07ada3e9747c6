"""The queue as a server-rendered HTML fragment (a <table>) for the reports page.

Every value that comes from the CRM or the rules (names, owners, policies, step keys) is
escaped; links go only to HubSpot's own record URL, built from numeric ids. No script.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from sla_bot.leadqueue.query import QueueItem

COLUMNS = ("Deadline", "Status", "Lead", "Owner", "Team", "Policy", "Next step", "Touches")


def when(at: datetime | None, now: datetime) -> str:
    """`2026-11-20 15:05 UTC (in 4m)` or `(overdue 12m)`."""
    if at is None:
        return "-"
    seconds = int((at - now).total_seconds())
    span = abs(seconds)
    amount = (
        f"{span // 86400}d{span % 86400 // 3600}h"
        if span >= 86400
        else f"{span // 3600}h{span % 3600 // 60:02d}m"
        if span >= 3600
        else f"{span // 60}m"
    )
    rel = f"overdue {amount}" if seconds < 0 else f"in {amount}"
    return f"{at:%Y-%m-%d %H:%M} UTC ({rel})"


def render(items: Iterable[QueueItem], now: datetime) -> str:
    """A <table class="lead-queue"> of the queue; empty queues say so."""
    rows = []
    for i in items:
        nxt = "-"
        if i.next_step:
            who = f" to {i.next_who}" if i.next_who else ""
            nxt = f"{i.next_step}{who} at {when(i.next_at, now)}"
        cells = [
            when(i.deadline, now) + (f" ({i.deadline_kind})" if i.deadline_kind else ""),
            i.status,
            None,  # the lead: a link
            i.owner_name or i.owner_id or "(no owner)",
            i.team or "-",
            i.policy,
            nxt,
            str(i.touches),
        ]
        link = (
            f'<a href="https://app.hubspot.com/contacts/{int(i.portal_id)}/record/0-1/'
            f'{int(i.contact_id)}" rel="noopener noreferrer">{escape(i.name)}</a>'
        )
        tds = "".join(f"<td>{link}</td>" if c is None else f"<td>{escape(c)}</td>" for c in cells)
        css = ' class="overdue"' if i.overdue else ""
        rows.append(f"<tr{css}>{tds}</tr>")
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    if not rows:
        rows = [f'<tr><td colspan="{len(COLUMNS)}">No open leads match.</td></tr>']
    return (
        '<table class="lead-queue">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
