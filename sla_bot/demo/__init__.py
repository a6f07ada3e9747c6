"""`sla-bot demo`: the real service against the project's fake HubSpot and Slack, on loopback.

Nothing here is imported by `serve`, `web` or `worker`. The demo's sped-up clock reaches its
service processes only as arguments of `python -m sla_bot.demo.service` (see `service.py`).
"""
