"""Prometheus metrics, aggregated across gunicorn workers via PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

EVENTS_RECEIVED = Counter(
    "sla_bot_webhook_events_received_total", "Events in signed, accepted webhook requests"
)
EVENTS_STORED = Counter(
    "sla_bot_webhook_events_stored_total", "Distinct events stored after deduplication"
)
EVENTS_DUPLICATE = Counter(
    "sla_bot_webhook_events_duplicate_total", "Events dropped as repeats of an earlier delivery"
)
REQUESTS_REJECTED = Counter(
    "sla_bot_webhook_requests_rejected_total",
    "Webhook requests refused, by reason",
    ["reason"],
)
DEAD_LETTERS = Counter(
    "sla_bot_dead_letters_total", "Signed requests kept in the dead-letter table"
)
REQUEST_LATENCY = Histogram(
    "sla_bot_http_request_duration_seconds",
    "HTTP request latency",
    ["endpoint", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RULES_RELOAD_ERRORS = Counter(
    "sla_bot_rules_reload_errors_total", "Rule reloads refused because the new files are invalid"
)
RULES_VALID = Gauge(
    "sla_bot_rules_valid",
    "1 if the rule files on disk are the ones in force, 0 if an invalid edit was refused",
    multiprocess_mode="liveall",
)

LEADS_UNFETCHED = Counter(
    "sla_bot_leads_routed_without_fetch_total",
    "Leads routed on what their events carried because their portal has no HubSpot client",
    ["portal", "reason"],
)
FETCH_ERRORS = Counter(
    "sla_bot_fetch_lead_errors_total",
    "Leads whose fetched contact could not be applied (marked, audited, skipped)",
)
OAUTH_INSTALLS = Counter(
    "sla_bot_oauth_installs_total", "OAuth install callbacks by outcome", ["outcome"]
)


def render() -> tuple[bytes, str]:
    """Exposition text for /metrics, aggregated over processes when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
