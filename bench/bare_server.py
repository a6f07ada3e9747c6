"""A Flask app that only answers 204, served exactly like sla-bot's web server (the baseline)."""

from __future__ import annotations

from flask import Flask, Response

from sla_bot.config import load_settings
from sla_bot.server import WebServer


def bare_app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/hubspot")
    def receive() -> Response:
        return Response(status=204)

    @app.get("/readyz")
    def ready() -> Response:
        return Response(status=200)

    return app


if __name__ == "__main__":
    WebServer(load_settings(), bare_app).run()
