"""Selectors: each operator, explanations, parse errors, and sound "can never match" reasoning."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_bot.rules.model import LeadRule, Routing
from sla_bot.rules.ruleset import RuleSet
from sla_bot.rules.select import SelectorError
from sla_bot.rules.select_implies import selector_implies
from sla_bot.rules.select_parse import parse_selector


@pytest.mark.parametrize(
    ("raw", "props", "expected"),
    [
        ({"s": "NEW"}, {"s": "NEW"}, True),
        ({"s": "NEW"}, {"s": "new"}, False),
        ({"n": 1}, {"n": "1.0"}, True),
        ({"s": ["A", "B"]}, {"s": "B"}, True),
        ({"s": {"not_in": ["A"]}}, {}, True),
        ({"s": {"not_equals": "A"}}, {"s": "A"}, False),
        ({"s": {"exists": True}}, {"s": ""}, False),
        ({"s": {"missing": True}}, {"s": None}, True),
        ({"s": {"exists": False}}, {"s": "x"}, False),
        ({"n": {"gte": 50, "lt": 100}}, {"n": "50"}, True),
        ({"n": {"gt": 50}}, {"n": "many"}, False),
        ({"d": {"after": "2026-01-01"}}, {"d": "2026-01-02T00:00:00Z"}, True),
        ({"d": {"after": "2026-01-01"}}, {"d": "2026-01-01T23:00:00Z"}, False),
        ({"d": {"before": "2026-01-01T12:00:00Z"}}, {"d": "1767261600000"}, True),  # 10:00Z
        ({"e": {"contains": "@GMAIL"}}, {"e": "a@gmail.com"}, True),
        ({"e": {"not_contains": "gmail"}}, {"e": None}, True),
        ({"t": {"regex": "(?i)^vp"}}, {"t": "VP Sales"}, True),
        ({"any": [{"a": "1"}, {"b": "2"}]}, {"b": "2"}, True),
        ({"all": [{"a": "1"}, {"b": "2"}]}, {"b": "2"}, False),
        ({"not": {"a": "1"}}, {"a": "2"}, True),
        ({"a": "1", "b": "2"}, {"a": "1", "b": "2"}, True),
        ("always", {}, True),
    ],
)
def test_operators(raw: Any, props: dict[str, Any], expected: bool) -> None:
    assert parse_selector(raw).matches(props) is expected


def test_explanation_names_the_conditions_and_values() -> None:
    sel = parse_selector({"any": [{"a": "1"}, {"n": {"gte": 5}, "s": {"missing": True}}]})
    assert sel.explain({"n": "7"}) == ["n >= 5 (value: '7')", "s is not set (value: not set)"]
    assert sel.explain({"n": "1"}) is None
    assert parse_selector("always").explain({}) == ["matches every lead"]


def test_every_problem_is_reported_with_its_path() -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector({"a": {"gte": "x", "regex": "("}, "all": [], "b": None, "c": {"betwen": 1}})
    assert [path for path, _ in caught.value.problems] == [
        ("a", "gte"),
        ("a", "regex"),
        ("all",),
        ("b",),
        ("c", "betwen", "[key]"),
    ]


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(SelectorError, match="has no time zone"):
        parse_selector({"d": {"after": "2026-01-01T10:00:00"}})


# --- "can never match": implication must be sound --------------------------------------------

VALUES = ["x", "y", "X", "1", "1.0", "10", "2026-01-01", "1767225600000", "2026-06-01T12:00:00Z"]
PROPS = ["a", "b"]
value = st.sampled_from(VALUES)
number = st.sampled_from([0, 1, 5, 10])


def _cond(prop: str, op: str, arg: Any) -> dict[str, Any]:
    return {prop: arg} if op == "raw" else {prop: {op: arg}}


conditions = st.builds(
    _cond,
    st.sampled_from(PROPS),
    st.sampled_from(["raw"]),
    value | st.lists(value, min_size=1, max_size=3),
) | st.one_of(
    st.builds(_cond, st.sampled_from(PROPS), st.sampled_from(["not_equals"]), value),
    st.builds(
        _cond, st.sampled_from(PROPS), st.just("not_in"), st.lists(value, min_size=1, max_size=3)
    ),
    st.builds(_cond, st.sampled_from(PROPS), st.sampled_from(["exists", "missing"]), st.booleans()),
    st.builds(_cond, st.sampled_from(PROPS), st.sampled_from(["gt", "gte", "lt", "lte"]), number),
    st.builds(
        _cond,
        st.sampled_from(PROPS),
        st.sampled_from(["contains", "not_contains"]),
        st.sampled_from(["x", "1", "."]),
    ),
    st.builds(_cond, st.sampled_from(PROPS), st.just("regex"), st.sampled_from(["^x", "0$", "y"])),
    st.builds(
        _cond,
        st.sampled_from(PROPS),
        st.sampled_from(["before", "after"]),
        st.sampled_from(["2026-01-01", "2026-03-01T00:00:00Z"]),
    ),
)
selectors = st.recursive(
    conditions,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=5,
)
contacts = st.fixed_dictionaries({p: st.none() | st.just("") | value for p in PROPS})


@settings(max_examples=400, deadline=None)
@given(selectors, selectors, st.lists(contacts, min_size=1, max_size=8))
def test_implication_is_sound(a: Any, b: Any, leads: list[dict[str, Any]]) -> None:
    sa, sb = parse_selector(a), parse_selector(b)
    if selector_implies(sa, sb):
        for lead in leads:
            assert not sa.matches(lead) or sb.matches(lead), (a, b, lead)


@settings(max_examples=100, deadline=None)
@given(selectors)
def test_a_selector_implies_itself_and_the_catch_all(raw: Any) -> None:
    sel = parse_selector(raw)
    assert selector_implies(sel, sel)
    assert selector_implies(sel, parse_selector("always"))


@settings(max_examples=200, deadline=None)
@given(st.lists(selectors, min_size=2, max_size=4), st.lists(contacts, min_size=1, max_size=8))
def test_a_rule_reported_as_shadowed_is_never_routed_to(raws: list[Any], leads: list[Any]) -> None:
    rules = [LeadRule(name=f"r{i}", when=parse_selector(r), policy="p") for i, r in enumerate(raws)]
    shadowed = {
        rule.name
        for i, rule in enumerate(rules)
        if any(selector_implies(rule.when, earlier.when) for earlier in rules[:i])
    }
    ruleset = RuleSet(
        calendars={}, teams={}, policies={}, routing={"r": Routing(leads=rules, fallback="ignore")}
    )
    for lead in leads:
        assert ruleset.route(1, lead).rule not in shadowed


def test_subsumption_examples() -> None:
    def implies(a: Any, b: Any) -> bool:
        return selector_implies(parse_selector(a), parse_selector(b))

    assert implies({"a": "x", "b": "y"}, {"a": ["x", "z"]})
    assert implies({"n": {"gt": 10}}, {"n": {"gte": 10}})
    assert not implies({"n": {"gte": 10}}, {"n": {"gt": 10}})
    assert implies({"a": {"missing": True}}, {"a": {"not_in": ["x"]}})
    assert implies({"any": [{"a": "x"}, {"a": "y"}]}, {"a": ["x", "y", "z"]})
    assert not implies({"a": ["x", "w"]}, {"a": ["x", "y"]})
    assert implies({"not": {"a": ["x", "y"]}}, {"not": {"a": "x"}})
