"""Tables. Every lead-related row is keyed by (portal_id, object_id): one deployment, many portals.

The webhook path writes one `webhook_batches` row per request (the cheapest durable write); the
worker splits batches into `webhook_events`, where a unique key drops HubSpot's duplicate
deliveries before any lead processing. Pending rows are found through partial indexes so a
sweep costs the same with 10 or 10 million processed rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from sla_bot.db.types import BigId, NulFreeString, NulFreeText, StoredBody, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

webhook_batches = Table(
    "webhook_batches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(16), nullable=False),  # "webhooks_api" | "workflow"
    Column("signature_version", String(8), nullable=False),  # v1 | v2 | v3 | none
    Column("portal_hint", BigInteger, nullable=True),  # ?portalId= for workflow payloads
    Column("body", StoredBody, nullable=False),  # raw bytes exactly as signed (compressed)
    Column("processed_at", UTCDateTime, nullable=True),
    Column("events_total", Integer, nullable=True),
    Column("events_new", Integer, nullable=True),
    Column("events_duplicate", Integer, nullable=True),
    Column("error", NulFreeText, nullable=True),
    # sha256 of `body` (migration 0010): a replayed body stores nothing new. NULL only on rows
    # whose body repeats an earlier row's from before the migration.
    Column("body_sha256", String(64), nullable=True),
)
Index("ix_webhook_batches_body_sha256", webhook_batches.c.body_sha256, unique=True)
Index(
    "ix_webhook_batches_pending",
    webhook_batches.c.id,
    postgresql_where=webhook_batches.c.processed_at.is_(None),
    sqlite_where=webhook_batches.c.processed_at.is_(None),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("portal_id", BigInteger, nullable=False),
    Column("object_id", BigInteger, nullable=False),
    Column("subscription_type", NulFreeString(64), nullable=False),
    Column("subscription_id", BigInteger, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("occurred_at_ms", BigInteger, nullable=False),
    Column("property_name", NulFreeString(255), nullable=False, server_default=""),
    Column("property_value", NulFreeText, nullable=True),
    Column("change_source", NulFreeString(64), nullable=True),
    Column("attempt_number", Integer, nullable=False, server_default="0"),
    Column("batch_index", Integer, nullable=False),  # position in the raw batch body
    Column("batch_id", BigId, ForeignKey("webhook_batches.id"), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("outcome", String(32), nullable=True),  # e.g. applied | ignored:unknown_type
    UniqueConstraint(
        "portal_id",
        "subscription_id",
        "event_id",
        "object_id",
        "occurred_at_ms",
        "property_name",
        name="uq_webhook_events_dedupe",
    ),
)
Index(
    "ix_webhook_events_pending",
    webhook_events.c.portal_id,
    webhook_events.c.object_id,
    webhook_events.c.occurred_at_ms,
    postgresql_where=webhook_events.c.processed_at.is_(None),
    sqlite_where=webhook_events.c.processed_at.is_(None),
)

# Retention deletes a batch once none of its events is left: found (and the foreign key checked)
# through this index, not a scan of every event per batch (migration 0011).
Index("ix_webhook_events_batch_id", webhook_events.c.batch_id)

# Signers (the OAuth app, or one private app's portal) seen signing with the timestamped v3
# (migration 0010): from then on their Webhooks-API requests must carry v3, so a captured
# request with its v3 headers stripped (v1 has no timestamp) cannot be replayed.
webhook_signers = Table(
    "webhook_signers",
    metadata,
    Column("signer", String(64), primary_key=True),  # "app" | "portal:<id>"
    Column("v3_seen_at", UTCDateTime, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("times_seen", Integer, nullable=False, server_default="1"),
    Column("source", String(32), nullable=False),  # hubspot_webhook | hubspot_batch
    Column("reason", NulFreeText, nullable=False),
    Column("content_type", NulFreeString(255), nullable=True),
    Column("signature_version", String(8), nullable=True),
    Column("body", LargeBinary, nullable=False),
    Column("body_sha256", String(64), nullable=False, unique=True),
    Column("resolved_at", UTCDateTime, nullable=True),
)

# --- SLA engine (migration 0002) -------------------------------------------------------------
# One row per (portal, contact). `next_due_at` is the only thing the scheduler reads: the sweep
# claims rows with next_due_at <= now (FOR UPDATE SKIP LOCKED on PostgreSQL), decides, writes
# outbox rows and the new next_due_at in the same transaction.
leads = Table(
    "leads",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("portal_id", BigInteger, nullable=False),
    Column("object_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # open | paused | closed | ignored
    Column("policy", String(128), nullable=True),
    Column("policy_hash", String(32), nullable=True),
    Column("policy_snapshot", Text, nullable=True),  # JSON, frozen when the clock started
    Column("rules_version", String(32), nullable=True),
    Column("owner_id", NulFreeString(64), nullable=True),
    Column("owner_assigned_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=True),  # contact createdate
    Column("clock_started_at", UTCDateTime, nullable=True),
    Column("properties", Text, nullable=False, server_default="{}"),  # JSON: latest known
    Column("touches", Text, nullable=False, server_default="[]"),  # JSON list
    Column("touch_count", Integer, nullable=False, server_default="0"),
    Column("state", Text, nullable=False, server_default="{}"),  # JSON: engine.state.LeadState
    Column("next_due_at", UTCDateTime, nullable=True),
    Column("last_event_ms", BigInteger, nullable=False, server_default="0"),
    Column("needs_fetch", Integer, nullable=False, server_default="0"),  # 1: refresh from CRM
    Column("closed_reason", String(64), nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("version", Integer, nullable=False, server_default="0"),  # compare-and-set
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("portal_id", "object_id", name="uq_leads_portal_id_object_id"),
)
Index(
    "ix_leads_due",
    leads.c.next_due_at,
    postgresql_where=leads.c.next_due_at.is_not(None),
    sqlite_where=leads.c.next_due_at.is_not(None),
)
Index(
    "ix_leads_needs_fetch",
    leads.c.id,
    postgresql_where=leads.c.needs_fetch == 1,
    sqlite_where=leads.c.needs_fetch == 1,
)

# Audit trail: every state change and decision, so a rep can ask "why was I pinged?".
lead_events = Table(
    "lead_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("lead_id", BigId, ForeignKey("leads.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),  # JSON
)

# Decided side effects, delivered separately. `idempotency_key` (lead, step occurrence,
# recipient) makes deciding the same occurrence twice impossible; `step` and `recipient` let a
# later decision withdraw or re-target an undelivered message.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("lead_id", BigId, ForeignKey("leads.id"), nullable=True, index=True),
    Column("portal_id", BigInteger, nullable=False),
    Column("object_id", BigInteger, nullable=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),  # slack | hubspot | log
    Column("kind", String(64), nullable=False),  # e.g. first_touch.breach, recycle
    Column("step", String(128), nullable=True),  # the step occurrence, e.g. ladder.2
    Column("recipient", String(160), nullable=True),  # "<role>:<id>" of a Slack message
    Column("payload", Text, nullable=False),  # JSON: recipients, message facts, CRM operation
    Column("status", String(16), nullable=False),  # pending | sent | failed | cancelled
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("result", Text, nullable=True),  # JSON: e.g. Slack channel + ts, HubSpot object id
    Column("error", NulFreeText, nullable=True),
)
# Claims read due rows in this order (migration 0016 added `id`): no sort, however many are due.
Index(
    "ix_outbox_pending",
    outbox.c.channel,
    outbox.c.next_attempt_at,
    outbox.c.id,
    postgresql_where=outbox.c.status == "pending",
    sqlite_where=outbox.c.status == "pending",
)

# Reconciliation watermarks, per portal and job.
sync_state = Table(
    "sync_state",
    metadata,
    Column("portal_id", BigInteger, primary_key=True),
    Column("job", String(64), primary_key=True),
    Column("watermark", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- Slack (migration 0003_slack) ---------------------------------------------------------------
# One row per (lead, Slack conversation): the first message about the lead there. Later messages
# go in its thread and it is edited in place (chat.update) to show the lead's current state.
slack_threads = Table(
    "slack_threads",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("lead_id", BigId, nullable=False),
    Column("target", String(128), nullable=False),  # what we post to: D… / C… / #name
    Column("channel", String(32), nullable=False),  # Slack's conversation id (for chat.update)
    Column("ts", String(32), nullable=False),
    Column("root_payload", Text, nullable=False),  # JSON: the first message's outbox payload
    Column("state", String(255), nullable=True),  # e.g. "Handled: on it (Alex)"
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("lead_id", "target", name="uq_slack_threads_lead_id_target"),
)

# Slack pacing across worker processes (migration 0009): a conversation's next free posting slot
# (epoch seconds). Every post takes the slot `max(now, next_slot)` and moves it one interval on.
slack_pacing = Table(
    "slack_pacing",
    metadata,
    Column("channel", String(128), primary_key=True),
    Column("next_slot", Double, nullable=False),
)

# --- Slack batches (migration 0013_slack_batches) -------------------------------------------------
# Noise control: escalations to one manager or channel within a window share one message, edited
# in place as leads join. A batch's own message goes out through the outbox (row key
# "batch:<id>"); each lead's row joins a batch once (`slack_batch_items.outbox_id` is unique).
slack_batches = Table(
    "slack_batches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("portal_id", BigInteger, nullable=False),
    Column("batch_key", String(255), nullable=False),  # "<portal>:<role>:<recipient id>"
    Column("target", String(128), nullable=False),  # what we post to: D… / C… / #name
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closes_at", UTCDateTime, nullable=False),  # leads join until then
    Column("post_at", UTCDateTime, nullable=False),  # later than opened_at: the hourly cap
    Column("max_per_hour", Integer, nullable=True),
    Column("channel", String(32), nullable=True),  # Slack's conversation id, once posted
    Column("ts", String(32), nullable=True),
    Column("shown", Integer, nullable=False),  # how many leads the message lists now
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_slack_batches_batch_key_closes_at", slack_batches.c.batch_key, slack_batches.c.closes_at)

slack_batch_items = Table(
    "slack_batch_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("batch_id", BigId, nullable=False),
    Column("outbox_id", BigId, nullable=False),
    Column("lead_id", BigId, nullable=True),
    Column("payload", Text, nullable=False),  # JSON: the lead's own outbox payload
    Column("folded", Integer, nullable=False),  # 1: held back by the hourly cap
    Column("added_at", UTCDateTime, nullable=False),
    UniqueConstraint("outbox_id", name="uq_slack_batch_items_outbox_id"),
)
Index("ix_slack_batch_items_batch_id", slack_batch_items.c.batch_id)

# users.lookupByEmail results with an expiry; user_id NULL caches "not in this workspace".
slack_users = Table(
    "slack_users",
    metadata,
    Column("email", String(255), primary_key=True),  # lower-cased
    Column("user_id", String(32), nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# --- HubSpot portals (migration 0006_portals) ---------------------------------------------------
# One row per connected (or once connected) portal. OAuth installs keep their tokens here,
# encrypted with SLA_BOT_SECRET_KEY (Fernet); private-app portals come from the portals file and
# get a row when they are removed (so every replica stops calling them) or paused.
hubspot_portals = Table(
    "hubspot_portals",
    metadata,
    Column("portal_id", BigInteger, primary_key=True, autoincrement=False),
    Column("auth", String(16), nullable=False),  # oauth | private_app
    Column("status", String(16), nullable=False),  # active | revoked | removed
    Column("app_id", BigInteger, nullable=True),
    Column("hub_domain", NulFreeString(255), nullable=True),
    Column("scopes", Text, nullable=True),  # space-separated, as granted
    Column("refresh_token", Text, nullable=True),  # Fernet ciphertext, never plaintext
    Column("access_token", Text, nullable=True),  # Fernet ciphertext
    Column("access_expires_at", UTCDateTime, nullable=True),
    Column("token_error", NulFreeText, nullable=True),  # the last refresh/auth failure, no secrets
    Column("paused_until", UTCDateTime, nullable=True),  # HubSpot's daily limit was reached
    Column("installed_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Single-use OAuth `state` nonces, inserted when a callback consumes one (replays collide).
oauth_states = Table(
    "oauth_states",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("used_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# The request budget towards HubSpot, shared by every worker process: `slot` 0..N-1 of a
# (portal, bucket) is free when `busy_until` (epoch seconds) has passed. A request takes a free
# slot and holds it until its response arrived plus one window, so no window holds more than N
# requests as HubSpot counts them (arrivals), whatever the network delay.
hubspot_rate_slots = Table(
    "hubspot_rate_slots",
    metadata,
    Column("portal_id", BigInteger, primary_key=True, autoincrement=False),
    Column("bucket", String(16), primary_key=True),  # general | search
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("busy_until", Double, nullable=False, server_default="0"),
)

# --- Outcomes and metrics (migration 0008) ------------------------------------------------------
# One row per lead whose clock started: what happened to it, recorded by the sweep in the same
# transaction as the decision (never recomputed from logs), read by `sla-bot report` and /reports.
lead_outcomes = Table(
    "lead_outcomes",
    metadata,
    Column("lead_id", BigId, ForeignKey("leads.id"), primary_key=True, autoincrement=False),
    Column("portal_id", BigInteger, nullable=False),
    Column("object_id", BigInteger, nullable=False),
    Column("name", NulFreeString(255), nullable=True),  # the contact's name (CRM text: escape it)
    Column("policy", String(128), nullable=False),
    Column("team", NulFreeString(128), nullable=True),
    Column("owner_id", NulFreeString(64), nullable=True),  # the rep accountable for the first touch
    Column("owner_name", NulFreeString(255), nullable=True),
    Column("source", NulFreeString(64), nullable=True),  # hs_analytics_source
    Column("latest_source", NulFreeString(64), nullable=True),  # hs_latest_source
    # The first of SLA_BOT_CAMPAIGN_PROPERTIES set.
    Column("campaign", NulFreeString(255), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),  # the first-touch clock started
    Column("due_at", UTCDateTime, nullable=True),  # the first-touch deadline (held time skipped)
    Column("first_touch_at", UTCDateTime, nullable=True),
    Column("first_touch_owner_id", NulFreeString(64), nullable=True),  # who owned the lead then
    Column("business_seconds", Integer, nullable=True),  # clock start -> first touch, open time
    Column("wall_seconds", Integer, nullable=True),  # clock start -> first touch, real time
    Column("result", String(16), nullable=True),  # met | breached | NULL (not decided yet)
    Column("late_by_seconds", Integer, nullable=True),  # a late first touch, as the target counts
    Column("touches", Integer, nullable=False, server_default="0"),
    Column("connected_at", UTCDateTime, nullable=True),
    Column("last_touch_at", UTCDateTime, nullable=True),
    Column("escalations", Integer, nullable=False, server_default="0"),  # ladder steps sent
    Column("escalation_level", Integer, nullable=False, server_default="0"),  # highest rung sent
    Column("reassignments", Integer, nullable=False, server_default="0"),
    Column("gap_misses", Integer, nullable=False, server_default="0"),  # cadence nudges sent
    Column("min_touches", Integer, nullable=False, server_default="1"),
    Column("outcome", String(16), nullable=False, server_default="open"),
    Column("outcome_reason", NulFreeString(255), nullable=True),
    Column("outcome_at", UTCDateTime, nullable=True),
    Column("touches_before_outcome", Integer, nullable=True),
    Column("premature_dq", Integer, nullable=False, server_default="0"),
    Column("qualified_at", UTCDateTime, nullable=True),  # lifecycle stage: sales-qualified
    Column("opportunity_at", UTCDateTime, nullable=True),
    Column("customer_at", UTCDateTime, nullable=True),
    # Seconds each funnel stage came after the latest earlier stage reached by then (NULL: not
    # reached, or nothing came before it): how long the lead waited before moving on.
    Column("connected_after_s", Integer, nullable=True),
    Column("qualified_after_s", Integer, nullable=True),
    Column("opportunity_after_s", Integer, nullable=True),
    Column("customer_after_s", Integer, nullable=True),
    Column("backfilled", Integer, nullable=False, server_default="0"),  # 1: from the audit trail
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("portal_id", "object_id", name="uq_lead_outcomes_portal_id_object_id"),
)
Index("ix_lead_outcomes_started_at", lead_outcomes.c.started_at)
Index(
    "ix_lead_outcomes_open",
    lead_outcomes.c.policy,
    postgresql_where=lead_outcomes.c.outcome == "open",
    sqlite_where=lead_outcomes.c.outcome == "open",
)

# What happened to a lead, when, and who owned it then: touches, connects, the breach, ladder
# steps sent, reassignments, lifecycle-stage changes, premature disqualifications, the outcome.
# `key` names the occurrence, so recording a decision again adds nothing.
lead_outcome_events = Table(
    "lead_outcome_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("lead_id", BigId, ForeignKey("leads.id"), nullable=False),
    Column("portal_id", BigInteger, nullable=False),
    Column("object_id", BigInteger, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("key", NulFreeString(160), nullable=False),
    Column("owner_id", NulFreeString(64), nullable=True),
    Column("detail", NulFreeString(255), nullable=True),
    UniqueConstraint("lead_id", "key", name="uq_lead_outcome_events_lead_id_key"),
)

# Counters the worker keeps in the database, so any web process can expose them on /metrics
# however the processes are deployed. One row per (metric, labels, writing process): a process
# only ever updates its own rows, so worker replicas never wait on each other; /metrics sums them.
metric_series = Table(
    "metric_series",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("labels", String(255), primary_key=True),  # canonical JSON of sorted (name, value)
    Column("process", String(64), primary_key=True),
    Column("value", Float, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- Liveness (migration 0011) ------------------------------------------------------------------
# One row per running worker process, beaten every few seconds: /readyz, `sla-bot health` and
# the heartbeat gauge on /metrics all read it. Rows of workers gone for a day are pruned.
worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(64), primary_key=True),  # host:pid:random, one per process
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("beat_at", UTCDateTime, nullable=False),
)
