"""Conservative entailment between selectors: "every lead matching A surely matches B".

Used to report routing rules that can never match because an earlier rule takes all their
leads. "Conservative" means a True answer is always right; False may just mean "not proven".
"""

from __future__ import annotations

from sla_bot.rules.select import (
    NEGATIVE_OPS,
    All,
    AnyOf,
    Cond,
    Node,
    Not,
    Selector,
    number_of,
    same,
)


def selector_implies(a: Selector, b: Selector) -> bool:
    return implies(a.root, b.root)


def implies(a: Node, b: Node) -> bool:
    """Conservative entailment: True means every property set matching a also matches b."""
    if a == b or b == All(()):
        return True
    if isinstance(b, All):
        return all(implies(a, p) for p in b.parts)
    if isinstance(a, AnyOf):
        return all(implies(p, b) for p in a.parts)
    if isinstance(b, AnyOf) and any(implies(a, p) for p in b.parts):
        return True
    if isinstance(a, All):
        return any(implies(p, b) for p in a.parts)
    if isinstance(a, Not) and isinstance(b, Not):
        return implies(b.part, a.part)
    if isinstance(a, Cond) and isinstance(b, Cond):
        return a.prop == b.prop and _cond_implies(a, b)
    return False


def _cond_implies(a: Cond, b: Cond) -> bool:
    if a.op in ("equals", "in"):
        values = (a.value,) if a.op == "equals" else a.value
        return all(_value_implies(v, b) for v in values)
    if b.op == "exists":
        return a.op not in NEGATIVE_OPS
    if a.op == "missing":
        return b.op in NEGATIVE_OPS
    if a.op == b.op and a.op in ("gt", "gte", "after"):
        return a.value >= b.value if _comparable(a, b) else False
    if a.op == b.op and a.op in ("lt", "lte", "before"):
        return a.value <= b.value if _comparable(a, b) else False
    if (a.op, b.op) in (("gt", "gte"), ("gte", "gt"), ("lt", "lte"), ("lte", "lt")):
        strict = a.op == "gte" or a.op == "lte"  # a inclusive, b strict: need a strictly inside
        if a.op in ("gt", "gte"):
            return a.value > b.value if strict else a.value >= b.value
        return a.value < b.value if strict else a.value <= b.value
    if a.op == "contains" and b.op == "contains":
        return b.value.lower() in a.value.lower()
    if a.op == "not_in" and b.op in ("not_in", "not_equals"):
        needed = b.value if b.op == "not_in" else (b.value,)
        return all(any(same(n, v) for v in a.value) for n in needed)
    if a.op == "not_equals" and b.op in ("not_in", "not_equals"):
        needed = b.value if b.op == "not_in" else (b.value,)
        return all(same(n, a.value) for n in needed)
    return False


def _comparable(a: Cond, b: Cond) -> bool:
    return type(a.value) is type(b.value)


def _value_implies(v: str, b: Cond) -> bool:
    """Does `prop == v` force b? Numeric-looking v also equals other spellings ("1" == "1.0")."""
    if number_of(v) is not None and b.op in ("contains", "not_contains", "regex"):
        return False
    if b.op in ("before", "after"):
        return False  # several spellings of one instant; not worth proving
    return b.test({b.prop: v})
