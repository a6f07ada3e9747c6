"""Pinned rule sets, cached: `RuleSet.pin` per decision would rebuild calendars every time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sla_bot.rules import LoadedRules, RuleSet

_cache: OrderedDict[tuple[str, str], RuleSet] = OrderedDict()
_lock = threading.Lock()
SIZE = 256


def pinned(
    loaded: LoadedRules,
    policy_hash: str | None,
    snapshot: dict[str, Any] | Callable[[], dict[str, Any]],
) -> RuleSet:
    """Current rules (teams, people) with the lead's frozen policy and calendars put back.

    `snapshot` may be a loader, called only on a cache miss (the sweep does not read it)."""
    key = (loaded.version, policy_hash or "")
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    rules = loaded.ruleset.pin(snapshot() if callable(snapshot) else snapshot)
    with _lock:
        _cache[key] = rules
        while len(_cache) > SIZE:
            _cache.popitem(last=False)
    return rules
