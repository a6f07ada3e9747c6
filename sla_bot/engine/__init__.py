"""The SLA engine: webhook events -> leads -> decisions -> outbox rows.

- `leads`: the lead row as a dataclass, and compare-and-set writes;
- `touches`: turning HubSpot signals and Slack logs into touches (pure);
- `apply`: stored webhook events -> lead changes; `fetch`: batched CRM refresh;
- `decide`: the pure decision (lead, pinned rules, now -> notifications, CRM updates, next due);
- `sweep`: claim due leads, decide, write the outbox in the same transaction;
- `actions`: what Slack buttons do; `audit`: the "why was I pinged?" trail.
"""
