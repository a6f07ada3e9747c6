"""Selectors: the small condition language over HubSpot contact properties.

One language serves routing (`when`), stop and pause conditions, connects and disqualification.
A selector is a mapping; keys `all`, `any` and `not` combine, every other key is a property name
whose value is a condition. Several keys in one mapping must all hold.

    lead_source: demo_request                 # equals
    country: [US, CA]                         # in
    hs_lead_status: {not_in: [UNQUALIFIED]}
    numemployees: {gte: 50, lt: 1000}
    createdate: {after: 2026-01-01}
    jobtitle: {regex: "(?i)head|vp"}

Parsing is in select_parse.py, the "can this rule ever match" reasoning in select_implies.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sla_bot.rules.yamlpos import Path

Props = Mapping[str, Any]

OPERATORS = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "exists",
    "missing",
    "gt",
    "gte",
    "lt",
    "lte",
    "before",
    "after",
    "contains",
    "not_contains",
    "regex",
)
NEGATIVE_OPS = {"not_equals", "not_in", "not_contains", "missing"}
_SYMBOL = {"equals": "==", "not_equals": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
CATCH_ALL = "always"


class SelectorError(ValueError):
    """All problems of one selector, each with its path inside the selector."""

    def __init__(self, problems: list[tuple[Path, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


# --- values -----------------------------------------------------------------------------------


def text_of(value: Any) -> str | None:
    """A property or rule value as HubSpot text; None and "" both mean "not set"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return text if text != "" else None


def number_of(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def instant_of(value: Any) -> datetime | None:
    """HubSpot dates arrive as ISO text or as epoch milliseconds; naive means UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    if re.fullmatch(r"-?[0-9]{9,}", text):
        try:
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None  # epoch milliseconds beyond any calendar: not a date
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def same(a: str, b: str) -> bool:
    """Equality for enumeration values; numbers compare by value ("1" == "1.0")."""
    if a == b:
        return True
    na, nb = number_of(a), number_of(b)
    return na is not None and na == nb


# --- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cond:
    """One test on one property."""

    prop: str
    op: str
    value: Any  # str | tuple[str, ...] | float | date | datetime | re.Pattern | None

    def test(self, props: Props) -> bool:
        raw = props.get(self.prop)
        text = text_of(raw)
        op = self.op
        if op == "exists":
            return text is not None
        if op == "missing":
            return text is None
        if text is None:
            return op in NEGATIVE_OPS
        if op in ("equals", "not_equals"):
            return same(text, self.value) == (op == "equals")
        if op in ("in", "not_in"):
            return any(same(text, v) for v in self.value) == (op == "in")
        if op in ("contains", "not_contains"):
            return (self.value.lower() in text.lower()) == (op == "contains")
        if op == "regex":
            return self.value.search(text) is not None
        if op in ("gt", "gte", "lt", "lte"):
            n = number_of(text)
            return n is not None and _compare(op, n, self.value)
        when = instant_of(raw)
        if when is None:
            return False
        left: date | datetime = when
        if not isinstance(self.value, datetime):
            left = when.date()
        return left < self.value if op == "before" else left > self.value

    def describe(self) -> str:
        op, v = self.op, self.value
        if op in ("exists", "missing"):
            return f"{self.prop} {'is set' if op == 'exists' else 'is not set'}"
        if op in _SYMBOL:
            return f"{self.prop} {_SYMBOL[op]} {_fmt(v)}"
        if op in ("in", "not_in"):
            return f"{self.prop} {op.replace('_', ' ')} [{', '.join(v)}]"
        if op == "regex":
            return f"{self.prop} matches /{v.pattern}/"
        return f"{self.prop} {op.replace('_', ' ')} {_fmt(v)}"


def _compare(op: str, a: float, b: float) -> bool:
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v.isoformat() if isinstance(v, date) else str(v)


@dataclass(frozen=True)
class All:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Cond | All | AnyOf | Not


def _explain(node: Node, props: Props) -> list[str] | None:
    """The conditions that made node match, or None if it does not match."""
    if isinstance(node, Cond):
        if not node.test(props):
            return None
        actual = text_of(props.get(node.prop))
        shown = "not set" if actual is None else repr(actual)
        return [f"{node.describe()} (value: {shown})"]
    if isinstance(node, All):
        reasons: list[str] = []
        for part in node.parts:
            got = _explain(part, props)
            if got is None:
                return None
            reasons += got
        return reasons
    if isinstance(node, AnyOf):
        for part in node.parts:
            got = _explain(part, props)
            if got is not None:
                return got
        return None
    if _explain(node.part, props) is not None:
        return None
    return [f"not ({_describe(node.part)})"]


def _describe(node: Node) -> str:
    if isinstance(node, Cond):
        return node.describe()
    if isinstance(node, Not):
        return f"not ({_describe(node.part)})"
    joiner = " and " if isinstance(node, All) else " or "
    return joiner.join(f"({_describe(p)})" for p in node.parts) or CATCH_ALL


@dataclass(frozen=True)
class Selector:
    """A parsed selector; `raw` is what the file said (JSON-able) for snapshots and schema."""

    root: Node
    raw: Any

    @property
    def is_catch_all(self) -> bool:
        return self.root == All(())

    def matches(self, props: Props) -> bool:
        return _explain(self.root, props) is not None

    def explain(self, props: Props) -> list[str] | None:
        """Why it matches ("lead_source == demo_request (value: 'demo_request')"), else None."""
        got = _explain(self.root, props)
        if got is None:
            return None
        return got or ["matches every lead"]

    def describe(self) -> str:
        return _describe(self.root)

    def properties(self) -> set[str]:
        return _props(self.root)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Selector) and self.root == other.root

    def __hash__(self) -> int:
        return hash(self.root)


ALWAYS = Selector(All(()), CATCH_ALL)


def _props(node: Node) -> set[str]:
    if isinstance(node, Cond):
        return {node.prop}
    if isinstance(node, Not):
        return _props(node.part)
    return set().union(*(_props(p) for p in node.parts)) if node.parts else set()
