"""Parse the file form of a selector into the tree of select.py, collecting every problem."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from sla_bot.rules.select import (
    ALWAYS,
    CATCH_ALL,
    OPERATORS,
    All,
    AnyOf,
    Cond,
    Node,
    Not,
    Selector,
    SelectorError,
    number_of,
    text_of,
)
from sla_bot.rules.yamlpos import KEY, Path


def parse_selector(raw: Any) -> Selector:
    """Parse the file form; raises SelectorError listing every problem with its sub-path."""
    if isinstance(raw, Selector):
        return raw
    problems: list[tuple[Path, str]] = []
    if isinstance(raw, str) and raw.strip().lower() in (CATCH_ALL, "*"):
        return ALWAYS
    root = _parse(raw, (), problems)
    if problems:
        raise SelectorError(problems)
    return Selector(_simplify(root), _jsonable(raw))


def _parse(raw: Any, path: Path, problems: list[tuple[Path, str]]) -> Node:
    if not isinstance(raw, Mapping):
        problems.append(
            (path, f"a selector is a mapping like {{lead_source: demo_request}}, got {_kind(raw)}")
        )
        return All(())
    parts: list[Node] = []
    for key, value in raw.items():
        sub = (*path, key)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                problems.append((sub, f"'{key}' needs a non-empty list of selectors"))
                continue
            items = tuple(_parse(v, (*sub, i), problems) for i, v in enumerate(value))
            parts.append(All(items) if key == "all" else AnyOf(items))
        elif key == "not":
            parts.append(Not(_parse(value, sub, problems)))
        else:
            parts += _conditions(str(key), value, sub, problems)
    return All(tuple(parts))


def _conditions(prop: str, value: Any, path: Path, problems: list[tuple[Path, str]]) -> list[Cond]:
    if value is None:
        problems.append(
            (path, f"no condition for '{prop}'; to test for an empty value write {{missing: true}}")
        )
        return []
    if isinstance(value, list):
        return _one(prop, "in", value, path, problems)
    if not isinstance(value, Mapping):
        return _one(prop, "equals", value, path, problems)
    if not value:
        problems.append((path, f"empty condition for '{prop}'"))
    out: list[Cond] = []
    for op, arg in value.items():
        if op not in OPERATORS:
            near = difflib.get_close_matches(str(op), OPERATORS, n=1)
            hint = (
                f" (did you mean '{near[0]}'?)" if near else f"; use one of {', '.join(OPERATORS)}"
            )
            problems.append(((*path, op, KEY), f"unknown operator '{op}'{hint}"))
            continue
        out += _one(prop, op, arg, (*path, op), problems)
    return out


def _one(prop: str, op: str, arg: Any, path: Path, problems: list[tuple[Path, str]]) -> list[Cond]:
    try:
        return [Cond(prop, *_operand(op, arg))]
    except ValueError as exc:
        problems.append((path, f"{prop} {op}: {exc}"))
        return []


def _operand(op: str, arg: Any) -> tuple[str, Any]:
    """Check and normalise one operator's argument; returns (op, value)."""
    if op in ("exists", "missing"):
        if not isinstance(arg, bool):
            raise ValueError("expects true or false")
        return (op if arg else ("missing" if op == "exists" else "exists"), None)
    if op in ("in", "not_in"):
        if not isinstance(arg, list) or not arg:
            raise ValueError("expects a non-empty list of values")
        return op, tuple(_scalar(v) for v in arg)
    if op in ("gt", "gte", "lt", "lte"):
        n = number_of(arg)
        if n is None or isinstance(arg, date):
            raise ValueError(f"expects a number, got {arg!r}")
        return op, n
    if op in ("before", "after"):
        return op, _moment(arg)
    if op == "regex":
        if not isinstance(arg, str):
            raise ValueError("expects a pattern in quotes")
        try:
            return op, re.compile(arg)
        except re.error as exc:
            raise ValueError(f"bad regex {arg!r}: {exc}") from None
    return op, _scalar(arg)


def _scalar(v: Any) -> str:
    if isinstance(v, Mapping | list) or v is None:
        raise ValueError(f"expects a plain value, got {_kind(v)}")
    text = text_of(v)
    if text is None:
        raise ValueError(
            'an empty value never matches; to test for "not set" write {missing: true}'
        )
    return text


def _moment(v: Any) -> date | datetime:
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise ValueError(f"{v.isoformat()} has no time zone; add Z for UTC")
        return v.astimezone(UTC)
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return _moment(parsed)
    raise ValueError(f"expects a date like 2026-01-31 or 2026-01-31T09:00:00Z, got {v!r}")


def _kind(v: Any) -> str:
    if isinstance(v, Mapping):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return "nothing" if v is None else repr(v)


def _simplify(node: Node) -> Node:
    """Flatten nested all/any so equal meaning gives equal trees (for duplicate detection)."""
    if isinstance(node, Not):
        return Not(_simplify(node.part))
    if isinstance(node, Cond):
        return node
    kind = type(node)
    flat: list[Node] = []
    for part in (_simplify(p) for p in node.parts):
        if isinstance(part, kind):
            flat += part.parts
        elif part not in flat:
            flat.append(part)
    if len(flat) == 1:
        return flat[0]
    return kind(tuple(flat))


def _jsonable(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return {str(k): _jsonable(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_jsonable(v) for v in raw]
    if isinstance(raw, datetime | date):
        return raw.isoformat()
    return raw
