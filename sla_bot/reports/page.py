"""The /reports page: server-rendered HTML with inline SVG, no script, no front-end build.

Same numbers as `sla-bot report` (both call `run.report`), a weekly trend, the scorecard of the
chosen grouping, the funnel, premature disqualifications by name, and a drill-down from every
number to the leads behind it, each linking to HubSpot and to its "why" timeline.

Never open by default: every request needs a grant (access.py); a wrong or expired one gets 403
and the log says why, never what was sent. CRM text is escaped by Jinja's autoescaping (and by
markupsafe in the charts). The page is a list of sections (`SECTIONS`), so another report (e.g.
the queue of leads due next) is one more function.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from markupsafe import Markup

from sla_bot.engine import audit, outcome_store
from sla_bot.engine import leads as repo
from sla_bot.engine.notifications import contact_name, contact_url
from sla_bot.lead_show import describe
from sla_bot.leadqueue import html as queue_html
from sla_bot.leadqueue.query import QueueFilter, open_leads
from sla_bot.reports import access, aggregate, charts, formats, run
from sla_bot.reports.facts import GROUPINGS, Filters, utc
from sla_bot.rules.errors import RulesInvalid
from sla_bot.services import Services

log = logging.getLogger(__name__)
bp = Blueprint("reports", __name__, template_folder="templates")
FILTER_PARAMS = ("by", "since", "until", "portal", "tz", "team")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    html: Markup


@dataclass
class PageContext:
    """What a section renders from: the report, its filters, and how to link."""

    report: aggregate.Report
    trend: aggregate.Report
    filters: Filters
    link: Callable[..., str]  # link(endpoint, **params) with the grant and filters kept


def _services() -> Services:
    return current_app.extensions["sla_bot"]  # type: ignore[no-any-return]


def _access() -> access.Access:
    found = current_app.extensions.get("sla_bot_reports_access")
    if found is None:
        found = access.from_settings(_services().settings)
        current_app.extensions["sla_bot_reports_access"] = found
    return found  # type: ignore[no-any-return]


def _grant() -> access.Grant:
    value = request.args.get("access")
    header = request.headers.get("Authorization", "")
    if not value and header.startswith("Bearer "):
        value = header[7:]
    got = _access().check(value, now=_services().clock.now())
    if isinstance(got, access.Refusal):
        log.warning("reports: refused %s %s: %s", request.method, request.path, got.reason)
        abort(
            Response(
                "This report link is not valid or has expired. Ask for a new one.\n",
                status=403,
                content_type="text/plain; charset=utf-8",
                headers=SECURITY_HEADERS,
            )
        )
    return got


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _filters(grant: access.Grant) -> Filters:
    params = {k: request.args.get(k) for k in FILTER_PARAMS}
    try:
        return run.filters_from(params, run.default_zone(_services().rules), portal=grant.portal)
    except ValueError as exc:
        abort(Response(f"{exc}\n", status=400, content_type="text/plain; charset=utf-8"))


def _linker(grant: access.Grant) -> Callable[..., str]:
    kept = {k: v for k in FILTER_PARAMS if (v := request.args.get(k))}
    if grant.portal is not None:
        kept["portal"] = str(grant.portal)
    if request.args.get("access"):
        kept["access"] = grant.access

    def link(endpoint: str, **params: Any) -> str:
        merged = {**kept, **{k: v for k, v in params.items() if v is not None}}
        return url_for(endpoint, **merged)

    return link


def _costs() -> tuple[Any, list[str]]:
    settings = _services().settings
    try:
        return run.cost_file(settings.campaign_costs, settings.rules_dir), []
    except RulesInvalid as exc:
        return None, [f"Campaign costs not used: {e}" for e in exc.errors]


# --- sections -------------------------------------------------------------------------------


def trend_section(ctx: PageContext) -> Section:
    weeks = [
        charts.Week(
            g.label,
            g.values["leads"],
            g.values["compliance_pct"],
            ctx.link("reports.leads", by="week", group=g.key, metric="leads"),
        )
        for g in ctx.trend.groups
    ]
    return Section("trend", "Weekly trend", charts.weekly_trend(weeks))


def _cell(ctx: PageContext, g: aggregate.Group, m: aggregate.Metric) -> dict[str, Any]:
    value = g.values.get(m.key)
    href = None
    if value is not None:
        href = ctx.link(
            "reports.leads",
            group=g.key if g is not ctx.report.total else None,
            metric=m.key,
            all="1" if g is ctx.report.total else None,
        )
    return {
        "metric": m.key,
        "value": "" if value is None else str(value),
        "text": formats.shown(m, value),
        "href": href,
    }


def scorecard_section(ctx: PageContext) -> Section:
    report = ctx.report
    tables = []
    for title in formats.SECTIONS_ORDER:
        metrics = [m for m in report.metrics if title in m.sections]
        if not metrics:
            continue
        rows = [
            {
                "key": g.key if g is not report.total else "*",
                "label": g.label,
                "css": "total" if g is report.total else "group",
                "cells": [_cell(ctx, g, m) for m in metrics],
            }
            for g in [*report.groups, report.total]
        ]
        tables.append({"title": title, "metrics": metrics, "rows": rows})
    html = render_template(
        "reports/scorecard.html",
        tables=tables,
        by=ctx.filters.by,
        backfilled=report.backfilled,
        costs_note=report.costs_note,
    )
    return Section("scorecard", f"By {ctx.filters.by}", Markup(html))


def funnel_section(ctx: PageContext) -> Section:
    values = ctx.report.total.values
    stages = [
        (
            name,
            values[name] if name != "lead" else values["leads"],
            ctx.link("reports.leads", metric=name if name != "lead" else "leads", all="1"),
        )
        for name in aggregate.STAGES
    ]
    return Section("funnel", "Funnel", charts.funnel(stages))


def premature_section(ctx: PageContext) -> Section:
    tz = ctx.filters.tz
    items = [
        {
            **p,
            "when": p["at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "why": ctx.link("reports.lead", portal_id=p["portal_id"], contact_id=p["contact_id"]),
            "hubspot": contact_url(p["portal_id"], p["contact_id"]),
        }
        for p in ctx.report.premature
    ]
    html = render_template("reports/premature.html", items=items)
    return Section("premature", "Premature disqualifications", Markup(html))


QUEUE_ROWS = 50


def queue_section(ctx: PageContext) -> Section:
    """The open leads now, most urgent first: the same list as `sla-bot leads list`."""
    services = _services()
    now = services.clock.now()
    with services.engine.connect() as conn:
        items = open_leads(
            conn,
            services.rules.current(),
            now,
            QueueFilter(portal=ctx.filters.portal, limit=QUEUE_ROWS),
        )
    title = f"Open leads, most urgent first (first {QUEUE_ROWS})"
    return Section("queue", title, Markup(queue_html.render(items, now)))


SECTIONS: list[Callable[[PageContext], Section]] = [
    queue_section,
    trend_section,
    scorecard_section,
    funnel_section,
    premature_section,
]


# --- routes ---------------------------------------------------------------------------------


@bp.get("/reports")
def page() -> Response:
    grant = _grant()
    f = _filters(grant)
    cost_file, errors = _costs()
    services = _services()
    report = run.report(services.engine, f, cost_file=cost_file)
    fmt = request.args.get("format")
    if fmt in ("csv", "json"):
        kind = "text/csv" if fmt == "csv" else "application/json"
        body = formats.FORMATS[fmt](report)
        return Response(body, content_type=f"{kind}; charset=utf-8")
    trend = run.report(services.engine, Filters("week", f.since, f.until, f.portal, f.tz))
    link = _linker(grant)
    ctx = PageContext(report, trend, f, link)
    html = render_template(
        "reports/page.html",
        filters_line=formats.filters_line(report),
        sections=[make(ctx) for make in SECTIONS],
        action=url_for("reports.page"),
        access=grant.access if request.args.get("access") else "",
        groupings=GROUPINGS,
        by=f.by,
        since=request.args.get("since", ""),
        until=request.args.get("until", ""),
        portal="" if f.portal is None else f.portal,
        tz=f.tz.key,
        scoped=grant.portal is not None,
        csv_href=link("reports.page", format="csv"),
        json_href=link("reports.page", format="json"),
        errors=errors,
    )
    return Response(html, content_type="text/html; charset=utf-8")


def _when(t: datetime | None, f: Filters) -> str:
    return utc(t).astimezone(f.tz).strftime("%Y-%m-%d %H:%M") if t else "-"


@bp.get("/reports/leads")
def leads() -> Response:
    grant = _grant()
    f = _filters(grant)
    metric = request.args.get("metric", "leads")
    group = None if request.args.get("all") else request.args.get("group", "")
    if metric not in aggregate.BY_KEY:
        abort(Response("unknown metric\n", status=400, content_type="text/plain"))
    rows = run.leads(_services().engine, f, group, metric)
    link = _linker(grant)
    m = aggregate.BY_KEY[metric]
    where = "all leads" if group is None else f"{f.by} {group or '(none)'}"
    items = [
        {
            "object_id": r.object_id,
            "portal_id": r.portal_id,
            "name": r.name or f"contact {r.object_id}",
            "rep": r.owner_name or (f"owner {r.owner_id}" if r.owner_id else "-"),
            "policy": r.policy,
            "started": _when(r.started_at, f),
            "first_touch": _when(r.first_touch_at, f),
            "business": formats.duration(r.business_seconds)
            if r.business_seconds is not None
            else "-",
            "wall": formats.duration(r.wall_seconds) if r.wall_seconds is not None else "-",
            "result": r.result or "-",
            "touches": r.touches,
            "outcome": r.outcome,
            "why": link("reports.lead", portal_id=r.portal_id, contact_id=r.object_id),
            "hubspot": contact_url(r.portal_id, r.object_id),
        }
        for r in rows
    ]
    html = render_template(
        "reports/leads.html",
        title=f"{m.label}: {where}",
        filters_line=formats.filters_line(aggregate.build({}, f)),
        leads=items,
        back=link("reports.page"),
    )
    return Response(html, content_type="text/html; charset=utf-8")


FACT_LABELS = (
    ("policy", "Policy"),
    ("owner_name", "Rep"),
    ("started_at", "Clock started"),
    ("due_at", "First-touch deadline"),
    ("first_touch_at", "First touch"),
    ("result", "First touch"),
    ("touches", "Touches"),
    ("connected_at", "Connected"),
    ("outcome", "Outcome"),
    ("outcome_reason", "Why"),
)


@bp.get("/reports/lead/<int:portal_id>/<int:contact_id>")
def lead(portal_id: int, contact_id: int) -> Response:
    grant = _grant()
    if grant.portal is not None and grant.portal != portal_id:
        log.warning("reports: refused a lead of another portal than the link's")
        abort(Response("This link is for another portal.\n", status=403, content_type="text/plain"))
    f = _filters(grant)
    services = _services()
    with services.engine.connect() as conn:
        found = repo.find(conn, portal_id, contact_id)
        if found is None or found.id is None:
            abort(Response("No such lead.\n", status=404, content_type="text/plain"))
        trail = audit.history(conn, found.id)
        known = outcome_store.previous(conn, [found.id]).get(found.id)
    story = describe(found, trail, services.rules, services.clock.now())
    steps = [
        {
            "due": _when(datetime.fromisoformat(s["due_at"]), f),
            "key": s["key"],
            "outcome": s["outcome"],
            "who": ", ".join(r.get("name", "?") for r in s["recipients"]) or "-",
        }
        for s in (story["timeline"] or {}).get("steps", [])
    ]
    rows = []
    if known is not None:
        for key, label in FACT_LABELS:
            value = getattr(known, key)
            rows.append((label, _when(value, f) if isinstance(value, datetime) else value))
    events = [
        {
            "at": _when(datetime.fromisoformat(e["at"]), f),
            "kind": e["kind"],
            "detail": json.dumps(e["detail"], default=str, sort_keys=True)[:300],
        }
        for e in story["events"]
    ]
    name = (known.name if known else None) or contact_name(found.properties)
    name = name or f"contact {contact_id}"
    html = render_template(
        "reports/lead.html",
        name=name,
        lead=story["lead"],
        facts=rows,
        timeline=steps,
        events=events,
        hubspot=contact_url(portal_id, contact_id),
        back=_linker(grant)("reports.page"),
    )
    return Response(html, content_type="text/html; charset=utf-8")
