"""Reports over the outcome facts the engine records: `sla-bot report` and the /reports page.

- `facts.py`: reading the facts (one query, filters on portal and clock start);
- `aggregate.py`: the numbers (pure): speed to lead, SLA compliance, follow-through, funnel,
  costs, grouped by rep, team, policy, source, campaign or week;
- `costs.py`: the campaign costs file ops keep beside the rules;
- `formats.py`: table, CSV and JSON;
- `cli.py`: `sla-bot report`, `sla-bot report leads`, `sla-bot report link`;
- `access.py`: signed, expiring links and the configured token;
- `page.py` and `charts.py`: the server-rendered page (inline SVG, no front-end build).
"""
