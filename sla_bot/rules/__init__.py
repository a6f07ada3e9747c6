"""Rule files: the YAML format sales ops edit, its validation, hot reload and the lead timeline.

Entry points:
- `load_directory(path)` / `load_rules(path)`: a directory of *.yaml files -> RuleSet or errors;
- `RulesHolder`: the rules in force in a running service, reloaded when the files change;
- `build_timeline(...)`: every deadline and notification for one lead (pure).
"""

from sla_bot.rules.errors import RuleError, RulesInvalid
from sla_bot.rules.holder import LoadedRules, NoRulesLoaded, RulesHolder
from sla_bot.rules.loader import LoadResult, load_directory, load_rules
from sla_bot.rules.ruleset import Route, RuleSet, snapshot_hash
from sla_bot.rules.timeline import Step, Timeline, Touch, build_timeline

__all__ = [
    "LoadResult",
    "LoadedRules",
    "NoRulesLoaded",
    "Route",
    "RuleError",
    "RuleSet",
    "RulesHolder",
    "RulesInvalid",
    "Step",
    "Timeline",
    "Touch",
    "build_timeline",
    "load_directory",
    "load_rules",
    "snapshot_hash",
]
