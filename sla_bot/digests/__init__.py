"""Weekly digests in Slack: a scorecard per team for its manager, and the marketing digest.

- `schedule.py` (pure): when this week's digest is due in its calendar, and which week it covers;
- `content.py`: what it says, from the report code (sla_bot.reports), never computed again;
- `chart.py`: the scorecard's chart, a PNG rendered with matplotlib's Agg backend;
- `plan.py`: the worker job that enqueues each digest once per period through the outbox.

Delivery is integrations/slack/digests.py (the Slack deliverer hands these rows to it).
"""
