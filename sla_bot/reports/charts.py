"""Inline SVG charts for the reports page: plain markup, no script, every label escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 720, 240, 40


@dataclass(frozen=True)
class Week:
    label: str  # e.g. 2026-W44 (2026-10-26)
    leads: int
    compliance: Decimal | None  # percent
    href: str  # the drill-down of the week's leads


def _num(x: float) -> str:
    return f"{x:.1f}"


def weekly_trend(weeks: Sequence[Week]) -> Markup:
    """Bars: leads per week (left scale); line and dots: % SLA compliance (right scale, 0-100)."""
    if not weeks:
        return Markup('<p class="empty">No leads in this window.</p>')
    top = max(w.leads for w in weeks) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / len(weeks)
    bar = max(step * 0.6, 2)
    parts = [
        f'<svg id="weekly-trend" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Leads per week (bars) and % SLA compliance (line)</title>",
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>',
        f'<text class="scale" x="{PAD - 6}" y="{PAD}" text-anchor="end">{top}</text>',
        f'<text class="scale" x="{WIDTH - PAD + 6}" y="{PAD}">100%</text>',
    ]
    points = []
    for i, w in enumerate(weeks):
        x = PAD + i * step + (step - bar) / 2
        h = inner_h * w.leads / top
        y = HEIGHT - PAD - h
        label = escape(w.label)
        parts.append(
            f'<a href="{escape(w.href)}"><rect class="bar" data-week="{label}" '
            f'data-leads="{w.leads}" x="{_num(x)}" y="{_num(y)}" width="{_num(bar)}" '
            f'height="{_num(h)}"><title>{label}: {w.leads} leads</title></rect></a>'
        )
        short = escape(w.label.split(" ", 1)[0])
        parts.append(
            f'<text class="tick" x="{_num(x + bar / 2)}" y="{HEIGHT - PAD + 16}" '
            f'text-anchor="middle">{short}</text>'
        )
        if w.compliance is not None:
            cx = x + bar / 2
            cy = HEIGHT - PAD - inner_h * float(w.compliance) / 100
            points.append((cx, cy))
            parts.append(
                f'<circle class="dot" data-week="{label}" data-compliance="{w.compliance}" '
                f'cx="{_num(cx)}" cy="{_num(cy)}" r="4"><title>{label}: {w.compliance}% '
                f"compliance</title></circle>"
            )
    if len(points) > 1:
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        parts.append(f'<polyline class="line" points="{path}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel(stages: Sequence[tuple[str, int, str]]) -> Markup:
    """Horizontal bars, one per stage: (name, leads, drill-down href)."""
    top = max((n for _, n, _ in stages), default=0) or 1
    row, width = 28, WIDTH - 200
    height = row * len(stages) + 10
    parts = [
        f'<svg id="funnel" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Funnel: leads that reached each stage</title>",
    ]
    for i, (name, n, href) in enumerate(stages):
        y = 5 + i * row
        w = max(width * n / top, 1 if n else 0)
        stage = escape(name)
        parts.append(f'<text class="tick" x="110" y="{y + 17}" text-anchor="end">{stage}</text>')
        parts.append(
            f'<a href="{escape(href)}"><rect class="bar" data-stage="{stage}" data-leads="{n}" '
            f'x="120" y="{y}" width="{_num(w)}" height="{row - 8}"><title>{stage}: {n}</title>'
            f"</rect></a>"
        )
        parts.append(f'<text class="value" x="{_num(126 + w)}" y="{y + 17}">{n}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
