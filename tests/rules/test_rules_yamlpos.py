"""YAML loading that keeps positions, uses YAML 1.2 scalars and refuses duplicate keys."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sla_bot.rules.yamlpos import load_yaml


def test_yaml_12_scalars_keep_country_codes_and_times_as_text() -> None:
    text = (
        "a: NO\nb: yes\nc: 8:00\nd: 010\ne: true\nf: 1.5\ng: 2026-11-28\nh: 2026-11-20T22:55:00Z\n"
    )
    data = load_yaml(text, "f.yaml").data
    assert data == {
        "a": "NO",
        "b": "yes",
        "c": "8:00",
        "d": "010",
        "e": True,
        "f": 1.5,
        "g": date(2026, 11, 28),
        "h": datetime(2026, 11, 20, 22, 55, tzinfo=UTC),
    }


def test_positions_of_keys_values_and_flow_items() -> None:
    loaded = load_yaml("top:\n  inner: {x: [10, 20]}\n  2026-11-28: open\n", "f.yaml")
    pos = loaded.positions
    assert pos.of_key(("top", "inner")) == (2, 3)
    assert pos.of_value(("top", "inner", "x", 1)) == (2, 19)
    assert pos.of_key(("top", "2026-11-28")) == (3, 3)  # keys stay text, dates included
    assert pos.of_value(("top", "missing", "deeper")) == (2, 3)  # nearest ancestor


def test_duplicate_keys_are_errors_at_the_second() -> None:
    loaded = load_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml")
    assert [(e.line, e.col, e.message) for e in loaded.errors] == [
        (4, 3, "duplicate key 'c' (first defined on line 3)")
    ]
    assert loaded.data == {"a": 1, "b": {"c": 1}}


def test_anchors_and_merge_keys() -> None:
    text = "x-base: &base {a: 1, b: 2}\nuse:\n  <<: *base\n  b: 3\n"
    loaded = load_yaml(text, "f.yaml")
    assert loaded.errors == []
    assert loaded.data["use"] == {"a": 1, "b": 3}
    assert loaded.positions.of_value(("use", "b")) == (4, 6)


def test_impossible_date_is_an_error_with_position() -> None:
    loaded = load_yaml("closed: [2026-02-30]\n", "f.yaml")
    assert [(e.line, e.col) for e in loaded.errors] == [(1, 10)]
    assert "not a valid date" in loaded.errors[0].message


def test_empty_file_is_an_empty_mapping() -> None:
    assert load_yaml("# nothing yet\n", "f.yaml").data == {}
