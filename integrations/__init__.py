"""Adapters to the outside world (HubSpot, Slack). The domain in sla_bot never imports these."""
