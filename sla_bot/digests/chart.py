"""The scorecard's chart: a PNG rendered server-side with matplotlib (Agg: no display, no GUI
toolkit, safe in worker threads with one figure per call)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def scorecard_png(payload: Mapping[str, Any]) -> bytes:
    """Per rep: first touches met and breached (bars); the title compares % within target
    with last week. Labels are plain text (matplotlib does not interpret markup from them
    once `$` is escaped)."""
    reps = payload.get("reps") or []
    labels = [_plain(str(r["label"])) for r in reps] or ["(no leads)"]
    met = [int(r["values"].get("met") or 0) for r in reps] or [0]
    breached = [int(r["values"].get("breached") or 0) for r in reps] or [0]
    fig = Figure(figsize=(7, 0.5 * len(labels) + 1.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ys = range(len(labels))
    ax.barh(ys, met, color="#2e7d32", label="first touch met")
    ax.barh(ys, breached, left=met, color="#c62828", label="breached")
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    ax.set_xlabel("leads")
    ax.xaxis.get_major_locator().set_params(integer=True)
    total = payload.get("total", {}).get("shown", {})
    previous = payload.get("previous", {}).get("shown", {})
    ax.set_title(
        _plain(
            f"{payload.get('team')} {payload.get('period')}: "
            f"{total.get('within_target_pct', '-')} within target "
            f"(last week {previous.get('within_target_pct', '-')})"
        ),
        fontsize=10,
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _plain(text: str) -> str:
    """CRM names may hold `$`: matplotlib would read $...$ as math text."""
    return text.replace("$", r"\$")
