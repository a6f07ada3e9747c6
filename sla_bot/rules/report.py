"""Collecting errors at YAML positions, including pydantic errors mapped back via their `loc`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from sla_bot.rules.errors import RuleError
from sla_bot.rules.fields import CHANNEL_PATTERN, EMAIL_PATTERN, NAME_PATTERN, SLACK_USER_PATTERN
from sla_bot.rules.yamlpos import KEY, Path, Positions

_PATTERN_HELP = {
    CHANNEL_PATTERN: "should be a Slack channel like '#sales-leads' (quoted: # starts a YAML "
    "comment) or a channel id like C0123ABCD",
    EMAIL_PATTERN: "should be an email address",
    SLACK_USER_PATTERN: "should be a Slack user id like U0123ABCD",
    NAME_PATTERN: "should be a name made of letters, digits, _ . and -",
}


@dataclass(frozen=True)
class Origin:
    """The file a definition came from, to turn paths into positions."""

    file: str
    positions: Positions


@dataclass
class Report:
    errors: list[RuleError] = field(default_factory=list)

    def at(self, origin: Origin, path: Path, message: str, *, key: bool = False) -> None:
        pos = origin.positions.of_key(path) if key else origin.positions.of_value(path)
        self.errors.append(RuleError(origin.file, pos[0], pos[1], message))

    def extend(self, errors: Iterable[RuleError]) -> None:
        self.errors.extend(errors)

    def validation_error(
        self, origin: Origin, prefix: Path, data: Any, exc: ValidationError, vocabulary: set[str]
    ) -> None:
        """Report each pydantic error at the node its `loc` (plus any sub-path) points to."""
        explained = [(err, _explain(err, data, vocabulary)) for err in exc.errors()]
        # "unknown key 'timezon' (did you mean 'timezone'?)" already says 'timezone' is missing.
        suggested = {
            m[1] for _, found in explained for *_, text in found if (m := _SUGGESTION.search(text))
        }
        seen: dict[tuple[Path, bool], list[str]] = {}
        for err, found in explained:
            if err["type"] == "missing" and str(err["loc"][-1]) in suggested:
                continue
            for path, key, message in found:
                seen.setdefault((prefix + path, key), [])
                if message not in seen[(prefix + path, key)]:
                    seen[(prefix + path, key)].append(message)
        for (path, key), messages in seen.items():
            self.at(origin, path, "; or ".join(messages), key=key)


_SUGGESTION = re.compile(r"did you mean '([^']+)'")


def _resolve(data: Any, loc: Iterable[Any]) -> Path:
    """Follow loc through the data; parts that are not in the data (union tags) are skipped."""
    path: list[str | int] = []
    node = data
    for item in loc:
        if isinstance(node, dict) and str(item) in node:
            node = node[str(item)]
            path.append(str(item))
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node = node[item]
            path.append(item)
    return tuple(path)


def _at(data: Any, loc: tuple[Any, ...], message: str) -> tuple[Path, bool, str]:
    """A sub-path ending in KEY points at the mapping key rather than its value."""
    if loc and loc[-1] == KEY:
        return _resolve(data, loc[:-1]), True, message
    return _resolve(data, loc), False, message


def _explain(err: Any, data: Any, vocabulary: set[str]) -> list[tuple[Path, bool, str]]:
    loc = tuple(x for x in err["loc"] if x != KEY)
    kind, ctx = err["type"], err.get("ctx") or {}
    field_name = next((str(x) for x in reversed(loc) if isinstance(x, str)), "")
    if kind in ("rules_many", "rules_at"):
        problems = ctx["problems"] if kind == "rules_many" else [(ctx["path"], ctx["message"])]
        return [_at(data, loc + tuple(sub), message) for sub, message in problems]
    path = _resolve(data, loc)
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(str(loc[-1]), sorted(vocabulary), n=1, cutoff=0.75)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        return [(path, True, f"unknown key '{loc[-1]}'{hint}")]
    if kind == "missing":
        return [(path, False, f"missing required key '{loc[-1]}'")]
    message = re.sub(r"^(Value|Assertion) error, ", "", err["msg"])
    if kind == "string_pattern_mismatch":
        message = _PATTERN_HELP.get(ctx.get("pattern", ""), message)
    if kind in ("model_type", "dict_type") and err["input"] is not None:
        message = f"should be a mapping of key: value, got {type(err['input']).__name__}"
    if kind in ("string_type", "model_type", "dict_type", "list_type") and err["input"] is None:
        message = "is empty" + (
            " (in YAML, # starts a comment: quote it)" if "channel" in field_name else ""
        )
    prefix = f"{field_name}: " if field_name and not message.startswith(field_name) else ""
    return [(path, KEY in err["loc"], prefix + message)]


def field_names(models: Iterable[type[BaseModel]]) -> set[str]:
    """Every key any model accepts, to suggest a correction for a typo."""
    names: set[str] = set()
    for model in models:
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
    return names
