"""Block Kit for the weekly digests (team scorecard, marketing digest), with a plain-text twin.

The numbers are the report's own, as its table prints them (`shown` in the payload, made by
sla_bot.digests.content). Names of leads, reps, sources, campaigns and reasons come from the
CRM and go through `escape`, so a lead named `<!channel>` cannot ping anyone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from integrations.slack.messages import escape

Payload = Mapping[str, Any]
SECTION_CHARS = 2900  # Slack refuses a section over 3000 characters
KINDS = frozenset({"scorecard", "marketing"})


class _Style:
    """mrkdwn (escaped CRM text, bold) or plain text (the log line and the notification)."""

    def __init__(self, markup: bool) -> None:
        self.markup = markup

    def e(self, text: object) -> str:
        return escape(text) if self.markup else str(text)

    def b(self, text: object) -> str:
        return f"*{self.e(text)}*" if self.markup else str(text)


def _s(numbers: Payload, key: str) -> str:
    return str((numbers.get("shown") or {}).get(key, "-"))


def title(payload: Payload) -> str:
    if payload.get("kind") == "scorecard":
        return f"Scorecard {payload.get('team')}, week {payload.get('period')}"
    return f"Marketing digest, week {payload.get('period')}"


def _scorecard(p: Payload, st: _Style) -> list[tuple[str, list[str]]]:
    now, before = p.get("total") or {}, p.get("previous") or {}
    summary = [
        f"{st.b('Speed to lead')} (median, business time): {_s(now, 'business_median_s')} "
        f"(last week {_s(before, 'business_median_s')}); wall clock {_s(now, 'wall_median_s')}",
        f"{st.b('Within target')}: {_s(now, 'within_target_pct')} "
        f"(last week {_s(before, 'within_target_pct')})",
        f"Leads {_s(now, 'leads')}, touched {_s(now, 'touched')}, first touches met "
        f"{_s(now, 'met')}, breached {_s(now, 'breached')}, not decided {_s(now, 'pending')}",
    ]
    reps = [
        f"{st.b(r['label'])}: met {_s(r, 'met')}, breached {_s(r, 'breached')}, "
        f"touches/lead {_s(r, 'touches_per_lead')}, premature DQ {_s(r, 'premature_dq')}"
        for r in p.get("reps") or []
    ] or ["no leads this week"]
    longest = [
        f"{i}. {st.e(w['name'])} ({st.e(w['rep'])}): "
        + (
            f"{w['waited']} to a first touch"
            if w["touched"]
            else f"{w['waited']}, not touched yet"
            if w.get("open")
            else f"{w['waited']}, closed without a touch"
        )
        for i, w in enumerate(p.get("longest") or [], start=1)
    ] or ["none"]
    return [("", summary), ("Per rep", reps), ("Waited longest", longest)]


def _listed(block: Payload, line: Callable[[Payload], str]) -> list[str]:
    lines = [line(item) for item in block.get("items") or []]
    if block.get("more"):
        lines.append(f"... and {block['more']} more (see the report)")
    return lines or ["none"]


def _marketing(p: Payload, st: _Style) -> list[tuple[str, list[str]]]:
    def row(g: Payload, costs: bool) -> str:
        text = (
            f"{st.b(g['label'])}: {_s(g, 'leads')} leads, speed {_s(g, 'business_median_s')}, "
            f"connect {_s(g, 'connect_rate_pct')}, min touches reached "
            f"{_s(g, 'min_touches_first_pct')}"
        )
        if costs:
            text += (
                f", cost/lead {_s(g, 'cost_per_lead')}, "
                f"cost/sales-accepted {_s(g, 'cost_per_qualified')}"
            )
        return text

    costs = bool(p.get("costs"))
    campaigns = [row(g, costs) for g in p.get("campaigns") or []]
    if p.get("costs_problem"):
        campaigns.append(f"Costs left out: {p['costs_problem']}")
    elif not costs:
        campaigns.append("(no campaign costs file: costs not shown)")
    recycled = _listed(
        p.get("recycled") or {},
        lambda r: (
            f"{st.e(r['name'])} ({st.e(r['rep'])}, {st.e(r['source'])}/"
            f"{st.e(r['campaign'])}): {st.e(r['reason'])}"
        ),
    )
    premature = _listed(
        p.get("premature") or {},
        lambda r: (
            f"{st.e(r['name'])}: owner {st.e(r['rep'])}, "
            f"{r['touches']} of {r['min_touches']} touches"
        ),
    )
    return [
        ("By source", [row(g, False) for g in p.get("sources") or []]),
        ("By campaign", campaigns),
        ("Recycled", recycled),
        ("Prematurely disqualified", premature),
    ]


def _sections(p: Payload, st: _Style) -> list[tuple[str, list[str]]]:
    return _scorecard(p, st) if p.get("kind") == "scorecard" else _marketing(p, st)


def _footer(p: Payload, st: _Style) -> str:
    parts = [f"{p.get('days')} ({p.get('timezone')})"]
    if p.get("moved"):
        parts.append(f"sent later than scheduled: {p['moved']}")
    if p.get("link"):
        url = str(p["link"])
        if st.markup:
            parts.append(f"<{escape(url)}|Open the full report>")
        else:  # the log: the link is a grant to the reports, so its signature stays out
            parts.append(re.sub(r"([?&]access=)[^&]*", r"\1<hidden>", url))
    else:
        parts.append("no report link (SLA_BOT_SECRET_KEY is not set)")
    if p.get("kind") == "scorecard":
        parts.append("chart in the thread")
    return " | ".join(parts)


def plain_text(payload: Payload) -> str:
    """The digest as plain text: the log deliverer's output and Slack's notification fallback."""
    st = _Style(False)
    lines = [title(payload)]
    for heading, body in _sections(payload, st):
        lines += ([f"{heading}:"] if heading else []) + [f"- {b}" for b in body]
    lines.append(_footer(payload, st))
    return "\n".join(lines)


def _chunks(heading: str, lines: Sequence[str]) -> list[str]:
    """Section texts under SECTION_CHARS, the heading on the first."""
    out, current = [], f"*{heading}*" if heading else ""
    for line in lines:
        if current and len(current) + len(line) + 1 > SECTION_CHARS:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    return [*out, current] if current else out


def render(payload: Payload) -> tuple[str, list[dict[str, Any]]]:
    """(notification text, blocks)."""
    st = _Style(True)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(payload)[:150]}}
    ]
    for heading, lines in _sections(payload, st):
        for text in _chunks(heading, lines):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _footer(payload, st)}]}
    )
    return escape(title(payload)), blocks[:50]
