"""The Flask app factory: the composition root for the web process."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from integrations.slack import commands as slack_commands
from integrations.slack import interactivity as slack_interactivity
from sla_bot import heartbeat, metrics
from sla_bot.config import Settings, load_settings
from sla_bot.reports import page as reports_page
from sla_bot.services import Services
from sla_bot.web import hubspot_oauth, hubspot_webhook, ops
from sla_bot.web.errors import json_error


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the app from explicit services (tests) or from the environment (production)."""
    if services is None:
        services = Services.from_settings(settings or load_settings())
    app = Flask(__name__)
    # One byte of slack so the webhook reader can tell "exactly the limit" from "over it".
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_body_bytes + 1
    app.extensions["sla_bot"] = services
    app.extensions["sla_bot_started_at"] = heartbeat.wall_now()  # /readyz: a worker's grace
    app.wsgi_app = hubspot_webhook.WebhookEndpoint(services, app.wsgi_app)  # type: ignore[method-assign]
    app.register_blueprint(hubspot_oauth.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(slack_interactivity.bp)
    app.register_blueprint(slack_commands.bp)
    app.register_blueprint(reports_page.bp)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        started = g.get("started")
        if started is not None:
            metrics.REQUEST_LATENCY.labels(rule, str(response.status_code)).observe(
                time.perf_counter() - started
            )
        return response

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        return json_error(404, "not found")

    @app.errorhandler(405)
    def _method(_exc: Exception) -> Response:
        return json_error(405, "method not allowed")

    @app.errorhandler(413)
    def _too_large(_exc: Exception) -> Response:
        return json_error(413, "body too large")

    return app
