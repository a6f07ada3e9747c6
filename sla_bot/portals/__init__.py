"""Several HubSpot portals: their credentials (OAuth installs, private apps), per-portal clients
with request budgets shared by every worker, and the `sla-bot portals` command."""
