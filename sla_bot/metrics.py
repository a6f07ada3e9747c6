"""Prometheus metrics, aggregated across gunicorn workers via PROMETHEUS_MULTIPROC_DIR, plus the
worker's counters and the queue's gauges read from the database (metrics_db.py), merged into one
exposition: any web process's /metrics shows them all, however the processes are deployed."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric

disable_created_metrics()  # `_created` series cannot be summed across processes

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


# Counted wherever they happen: in the worker they go to the database (metrics_store.count),
# in a web process (e.g. a Slack call from a button) here.
DELIVERIES = Counter(
    "sla_bot_deliveries_total",
    "Outbox delivery attempts, by outcome (sent, retry, failed)",
    ["channel", "outcome"],
)
API_ERRORS = Counter(
    "sla_bot_api_errors_total", "Failed HubSpot and Slack API calls", ["api", "kind"]
)
_LOCAL = {"sla_bot_deliveries_total": DELIVERIES, "sla_bot_api_errors_total": API_ERRORS}


def local_counter(name: str, labels: tuple[tuple[str, str], ...]) -> Any:
    return _LOCAL[name].labels(**dict(labels))


class _Merged:
    """Families from several collectors as one: series with the same name and labels add up
    (a counter the web processes and the worker both count is one counter on /metrics)."""

    def __init__(self, sources: Iterable[Any]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for source in self.sources:
            for family in source.collect():
                families.setdefault(family.name, family)
                series = values.setdefault(family.name, {})
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    series[key] = series.get(key, 0.0) + sample.value
        for name, family in families.items():
            merged = Metric(family.name, family.documentation, family.type, family.unit)
            for (sample, labels), value in values[name].items():
                merged.add_sample(sample, dict(labels), value)
            yield merged


def render(database: Any = None) -> tuple[bytes, str]:
    """Exposition text for /metrics: this deployment's web processes (multiprocess files when
    PROMETHEUS_MULTIPROC_DIR is set, else this process) plus `database` (a DatabaseCollector)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry: Any = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    sources = [registry] if database is None else [registry, database]
    return generate_latest(_Merged(sources)), CONTENT_TYPE_LATEST
