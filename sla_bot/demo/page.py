"""The demo page: what each rep, manager and channel received in Slack, the leads, and buttons.

Plain server-rendered HTML (Flask + Jinja, autoescaped). Messages are drawn from the Block Kit
the service sent to the fake Slack; buttons and modals go back through the service's real, signed
`/slack/actions` endpoint as the person who received them. It shows lead data, so it is served on
127.0.0.1 only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from integrations.slack.fake import FakeSlack
from sla_bot.db.schema import leads as leads_table
from sla_bot.demo.blockkit import blocks_html
from sla_bot.demo.clock import SpeedClock
from sla_bot.demo.slack_user import SlackUser
from sla_bot.demo.terminal import local_time
from sla_bot.demo.world import World
from sla_bot.engine import leads as repo

OPENS_MODAL = {"sla_log_touch", "sla_snooze", "sla_reassign"}


@dataclass
class DemoContext:
    """Everything the page reads and drives."""

    world: World
    hubspot: FakeHubSpot
    slack: FakeSlack
    engine: Engine
    clock: SpeedClock
    user: SlackUser
    rules: Any  # RulesHolder of the rules the demo plays
    create_lead: Callable[[dict[str, str]], str]  # properties -> what happened
    service_url: str


def create_app(ctx: DemoContext) -> Flask:
    app = Flask(__name__)
    app.config["TEMPLATES_AUTO_RELOAD"] = False

    @app.after_request
    def _no_store(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'"
        )
        return response

    @app.get("/")
    def index() -> str:
        return render_template(
            "demo.html",
            now=ctx.clock.now(),
            speed=ctx.clock.speed,
            conversations=conversations(ctx),
            leads=lead_rows(ctx),
            service_url=ctx.service_url,
            notice=request.args.get("notice", ""),
        )

    @app.get("/leads/new")
    def new_lead() -> str:
        return render_template(
            "new_lead.html",
            reps=ctx.world.reps(),
            routing=ctx.world.routing_properties,
            policy=ctx.world.policy,
        )

    @app.post("/leads")
    def create() -> Response:
        form = request.form
        first, _, last = (form.get("name") or "New Lead").strip().partition(" ")
        props = {
            "firstname": first[:100],
            "lastname": last[:100],
            "company": (form.get("company") or "")[:200],
            "email": (form.get("email") or "")[:200],
        }
        if form.get("owner"):
            props["hubspot_owner_id"] = form["owner"][:32]
        for line in (form.get("properties") or "").splitlines()[:50]:
            key, sep, value = line.partition("=")
            if sep and key.strip():
                props[key.strip()[:100]] = value.strip()[:1000]
        notice = ctx.create_lead(props)
        return redirect(url_for("index", notice=notice))

    @app.post("/press")
    def press() -> Response:
        form = request.form
        action = {k: form.get(k, "") for k in ("action_id", "block_id", "value")}
        trigger, answer = ctx.user.press(form["user"], form["channel"], form["ts"], action)
        if answer.status_code != 200:
            return redirect(
                url_for("index", notice=f"/slack/actions answered {answer.status_code}")
            )
        if action["action_id"] in OPENS_MODAL:
            return redirect(url_for("modal", trigger=trigger, user=form["user"]))
        return redirect(url_for("index", _anchor=f"m{form['ts']}"))

    @app.get("/modal/<trigger>")
    def modal(trigger: str) -> str | Response:
        view = wait_for_view(ctx.slack, trigger, timeout=5.0)
        if view is None:
            return Response(
                render_template("waiting.html", trigger=trigger), status=202, mimetype="text/html"
            )
        return render_template("modal.html", view=view, user=request.args.get("user", ""))

    @app.post("/modal/<trigger>")
    def submit(trigger: str) -> str | Response:
        view = wait_for_view(ctx.slack, trigger, timeout=0)
        if view is None:
            abort(404)
        user = request.form.get("user", "")
        values = {k: v for k, v in request.form.items() if k != "user"}
        answer = ctx.user.submit(user, view, values)
        errors: Mapping[str, str] = {}
        if answer.status_code == 200 and answer.content:
            errors = (answer.json() or {}).get("errors") or {}
        elif answer.status_code != 200:
            errors = {"_": f"/slack/actions answered {answer.status_code}: {answer.text[:200]}"}
        if errors:
            return render_template("modal.html", view=view, user=user, errors=errors, form=values)
        return redirect(url_for("index", notice="Submitted"))

    @app.template_filter("blocks")
    def _blocks(message: Mapping[str, Any]) -> Markup:
        return blocks_html(message.get("blocks") or [], _button(message), _names(ctx))

    @app.template_filter("local")
    def _local(epoch: float, tz: str) -> str:
        return local_time(epoch, tz)

    def _button(message: Mapping[str, Any]) -> Callable[..., Markup]:
        def render(element: Mapping[str, Any], block: Mapping[str, Any]) -> Markup:
            fields = {
                "user": message.get("actor") or "",
                "channel": message["channel"],
                "ts": message["ts"],
                "action_id": element.get("action_id") or "",
                "block_id": block.get("block_id") or "",
                "value": element.get("value") or "",
            }
            hidden = "".join(
                f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in fields.items()
            )
            label = escape((element.get("text") or {}).get("text") or "?")
            style = escape(element.get("style") or "default")
            return Markup(
                f'<form method="post" action="{url_for("press")}" class="button">{hidden}'
                f'<button type="submit" class="{style}">{label}</button></form>'
            )

        return render

    return app


def _names(ctx: DemoContext) -> Callable[[str], str | None]:
    def name(ident: str) -> str | None:
        person = ctx.world.person(ident)
        return person.name if person else ctx.world.channels.get(ident)

    return name


def wait_for_view(slack: FakeSlack, trigger: str, timeout: float) -> dict[str, Any] | None:
    """The modal the service opened for this button press (it opens it after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        for view in slack.views.values():
            if view.get("trigger_id") == trigger:
                return view
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def conversations(ctx: DemoContext) -> list[dict[str, Any]]:
    """Each conversation with its top-level messages, their thread replies and ephemerals."""
    out = []
    ephemerals = ctx.slack.ephemerals
    for conv in ctx.slack.conversation_list():
        person = ctx.world.person(conv["user"]) if conv["user"] else None
        if conv["user"]:
            title = person.name if person else conv["user"]
            kind = f"DM \u00b7 {person.role if person else 'user'}"
            tz = person.timezone if person else "UTC"
            actor = conv["user"]
        else:
            title, kind, tz = f"#{conv['name']}", "channel", "UTC"
            actor = _channel_actor(ctx.world)
        messages = ctx.slack.messages(conv["id"])
        for m in messages:
            m.update(channel=conv["id"], actor=actor)
        roots = [m for m in messages if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        for root in roots:
            root["replies"] = [
                m for m in messages if m.get("thread_ts") == root["ts"] and m is not root
            ]
        notes = [e for e in ephemerals if e.get("channel") == conv["id"]]
        out.append(
            {
                "id": conv["id"],
                "title": title,
                "kind": kind,
                "tz": tz,
                "messages": roots,
                "ephemerals": notes,
                "count": len(messages),
            }
        )
    return sorted(out, key=lambda c: (c["kind"] == "channel", c["title"]))


def _channel_actor(world: World) -> str:
    """Who presses buttons in a channel on the page: a manager (Reassign is theirs)."""
    managers = [p for p in world.people if p.role == "manager"]
    return (managers or world.people)[0].slack_id if world.people else ""


def lead_rows(ctx: DemoContext) -> list[dict[str, Any]]:
    from sla_bot.lead_show import describe

    now = ctx.clock.now()
    contacts = ctx.hubspot.contacts
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(leads_table).order_by(leads_table.c.id.desc())).all()
    out = []
    for row in rows:
        lead = repo.from_row(row)
        contact = contacts.get(str(lead.object_id)) or {}
        name = " ".join(filter(None, (contact.get("firstname"), contact.get("lastname"))))
        try:
            timeline = describe(lead, [], ctx.rules, now)["timeline"]
        except Exception:  # noqa: BLE001 - a lead the page cannot explain still gets a row
            timeline = None
        owner = ctx.world.owner(lead.owner_id)
        out.append(
            {
                "id": lead.id,
                "contact": lead.object_id,
                "name": name or f"contact {lead.object_id}",
                "company": contact.get("company") or "",
                "owner": owner.name if owner else (lead.owner_id or "-"),
                "policy": lead.policy or "-",
                "state": (timeline or {}).get("status") or lead.status,
                "touches": len(lead.touches),
                "next": _next(lead.next_due_at, now, ctx.clock.speed),
            }
        )
    return out


def _next(due: datetime | None, now: datetime, speed: float) -> str:
    if due is None:
        return "-"
    seconds = (due - now).total_seconds() / speed
    when = due.strftime("%H:%M:%S UTC")
    if seconds <= 0:
        return f"{when} (due now)"
    return (
        f"{when} (in {seconds:.0f} s)" if seconds < 120 else f"{when} (in {seconds / 60:.0f} min)"
    )
