"""`rules check`: every kind of mistake is reported once, at the right file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rules.util import BASE, POLICY, errors_of, where

FIVE_MISTAKES = """\
calendars:
  ny:
    timezone: America/New_Yrok
    hours: {mon-fri: "08:00-18:00"}
teams:
  sdr:
    calendar: ny
    members: [{owner_id: "101"}]
polices: {}
policies:
  demo:
    team: sdrs
    first_touch: {within: 5 business minutes}
  nurture:
    team: sdr
    first_touch: {within: 2 business dayz}
routing:
  main:
    leads:
      - {name: everyone, policy: demo}
      - {name: demo, when: {lead_source: demo_request}, policy: demo}
    fallback: ignore
"""


def test_five_mistakes_give_five_errors_at_their_lines(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"five.yaml": FIVE_MISTAKES})
    assert [str(e).split(str(tmp_path) + "/", 1)[1] for e in errors] == [
        "five.yaml:3:15: unknown time zone 'America/New_Yrok' (expected e.g. America/New_York)",
        "five.yaml:9:1: unknown top-level key 'polices' (did you mean 'policies'?)",
        "five.yaml:12:11: unknown team 'sdrs' (did you mean 'sdr'?)",
        'five.yaml:16:27: bad duration "2 business dayz": expected e.g. 30s, 5m, 2h, 3d or '
        '"4 business hours", "2 business days"',
        "five.yaml:21:28: rule 'demo' can never match: rule 'everyone' (line 20) before it "
        "matches every lead",
    ]


def test_yaml_syntax_error_has_its_position(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"a.yaml": "calendars:\n  ny: [1, 2\n"})
    assert where(errors) == [("a.yaml", 2, 7)]  # the bracket left open, not the end of file
    assert errors[0].message.startswith("YAML: '[' is not closed")


def test_a_missing_closing_brace_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = (
        "calendars:\n"
        "  ny:\n"
        "    timezone: America/New_York\n"
        "    holidays: {country: US, subdivision: NY\n"
        "    hours:\n"
        "      mon-fri: 08:00-18:00\n"
    )
    errors = errors_of(tmp_path, {"a.yaml": text})
    assert where(errors) == [("a.yaml", 4, 15)]
    assert errors[0].message == (
        "YAML: '{' is not closed: expected ',' or '}' before line 5, column 10"
    )


def test_every_error_of_a_policy_is_reported_a_bad_name_beside_a_bad_value(
    tmp_path: Path,
) -> None:
    """A policy that fails on its own (a bad duration) still has its references checked."""
    text = (BASE + POLICY).replace("team: sdr", "team: sdrs")
    text = text.replace("within: 30 business minutes", "within: 30 business minuts")
    assert "sdrs" in text and "minuts" in text
    messages = [e.message for e in errors_of(tmp_path, {"rules.yaml": text})]
    assert "unknown team 'sdrs' (did you mean 'sdr'?)" in messages, messages
    assert any(m.startswith('bad duration "30 business minuts"') for m in messages), messages


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"a.yaml": "calendars:\n\tny: {}\n"})
    assert where(errors) == [("a.yaml", 2, 1)]


@pytest.mark.parametrize(
    ("snippet", "line", "col", "message"),
    [
        (
            "    first_touch: {within: 5m, clock_start: created}\n",
            3,
            31,
            "unknown key 'clock_start' (did you mean 'clock_starts'?)",
        ),
        (
            "    first_touch: {within: 5m}\n    cadence: {min_touches: eight, within: 5d}\n",
            4,
            28,
            "min_touches: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "    first_touch: {within: 5m, clock_starts: later}\n",
            3,
            45,
            "clock_starts: Input should be 'created' or 'owner_assigned'",
        ),
        ("    first_touch: {}\n", 3, 18, "missing required key 'within'"),
        (
            "    first_touch: {within: 5m}\n    cadence: {min_touches: 12, max_touches: 8, "
            "within: 10 business days}\n",
            4,
            28,
            "min_touches (12) is more than max_touches (8)",
        ),
        (
            "    first_touch: {within: 5m, warning: 10m before}\n",
            3,
            40,
            "warning 10m before is not inside the target of 5m",
        ),
        (
            "    first_touch: {within: 5m}\n    escalation:\n"
            "      - {after: 1h, do: [notify_owner]}\n      - {after: 30m, do: [notify_manager]}\n",
            6,
            17,
            "escalation step 2 (after 30m) must come later than step 1 (after 1h): "
            "list steps in time order",
        ),
        (
            "    first_touch: {within: 5m}\n    escalation: [{after: 0m, do: [notify_ownr]}]\n",
            4,
            35,
            "unknown action 'notify_ownr': use notify_owner, notify_manager, notify_channel, "
            "reassign, {notify_channel: '#name'} or {update_property: {name: value}}",
        ),
        (
            '    first_touch: {within: 5m}\n    stop_when: {email: {regex: "(bad"}}\n',
            4,
            32,
            "email regex: bad regex '(bad': missing ), unterminated subpattern at position 0",
        ),
        (
            "    first_touch: {within: 5m}\n    stop_when: {email: {containz: x}}\n",
            4,
            25,
            "unknown operator 'containz' (did you mean 'contains'?)",
        ),
    ],
)
def test_policy_mistakes(tmp_path: Path, snippet: str, line: int, col: int, message: str) -> None:
    text = "policies:\n  p:\n" + snippet + "routing: {r: {fallback: p}}\n"
    errors = errors_of(tmp_path, {"a.yaml": BASE + text.replace("\n", "\n", 1)})
    offset = BASE.count("\n")
    assert [(e.line - offset, e.col, e.message) for e in errors] == [(line, col, message)]


def test_unknown_references_are_reported_at_the_reference(tmp_path: Path) -> None:
    text = BASE + (
        "  other:\n    calendar: nyc\n    members: [{owner_id: '9'}]\n"
        "policies:\n  p:\n    team: sdx\n    first_touch: {within: 5m}\n"
        "routing:\n  r:\n    leads: [{name: a, when: {x: y}, policy: demp}]\n    fallback: nope\n"
    )
    errors = errors_of(tmp_path, {"a.yaml": text})
    assert [e.message for e in errors] == [
        "unknown calendar 'nyc' (did you mean 'ny'?)",
        "unknown team 'sdx' (did you mean 'sdr'?)",
        "unknown policy 'demp' (known: p)",
        "unknown policy 'nope' (known: p)",
    ]
    assert [e.line for e in errors] == [20, 24, 28, 29]


def test_duplicate_names_across_files_point_at_the_second(tmp_path: Path) -> None:
    second = "policies:\n  demo:\n    first_touch: {within: 5m}\n"
    errors = errors_of(tmp_path, {"a.yaml": BASE + POLICY, "b.yaml": second})
    assert where(errors) == [("b.yaml", 2, 3)]
    assert errors[0].message.startswith("duplicate policy name 'demo' (first defined at ")
    assert errors[0].message.endswith("a.yaml:20)")


def test_duplicate_key_in_one_file(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"a.yaml": BASE + POLICY + "teams: {}\n"})
    assert [(e.line, e.message) for e in errors] == [
        (33, "duplicate key 'teams' (first defined on line 8)")
    ]


def test_calendar_mistakes(tmp_path: Path) -> None:
    text = """\
calendars:
  a:
    timezone: Mars/Olympus
    hours: {mon-fri: ["08:00-12:00", "11:30-18:00"], funday: "09:00-10:00"}
  b:
    timezone: UTC
    hours: {mon: "18:00-08:00"}
    holidays: {country: XX}
  c:
    timezone: UTC
    hours: {mon: "08:00-18:00", mon-fri: "09:00-17:00"}
    holidays: [{country: US, subdivision: ZZ}, {country: US, skip: [Colombus Day]}]
policies:
  p: {calendar: c, first_touch: {within: 5m}}
routing: {r: {fallback: p}}
"""
    errors = errors_of(tmp_path, {"a.yaml": text})
    got = [(e.line, e.col, e.message.split(" (")[0].split(":")[0]) for e in errors]
    assert got == [
        (3, 15, "unknown time zone 'Mars/Olympus'"),
        (4, 22, "mon-fri"),
        (4, 54, "unknown day 'funday'"),
        (7, 18, "mon"),
        (8, 25, "unknown holiday country 'XX'"),
        (11, 33, "Monday is already set by 'mon'"),
        (12, 43, "unknown subdivision 'ZZ' for US"),
    ]
    assert "overlap" in errors[1].message
    assert "a shift past midnight is two windows" in errors[3].message


def test_unknown_skipped_holiday_name(tmp_path: Path) -> None:
    text = (
        BASE.replace("{country: US, subdivision: NY}", "{country: US, skip: [Colombus Day]}")
        + POLICY
    )
    errors = errors_of(tmp_path, {"a.yaml": text})
    assert [(e.line, e.col) for e in errors] == [(7, 36)]
    assert errors[0].message.startswith("no holiday named 'Colombus Day' in US (known: ")


def test_channel_lost_to_a_yaml_comment(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"a.yaml": BASE.replace('"#sales"', "#sales") + POLICY})
    assert [(e.line, e.message) for e in errors] == [
        (10, "channel is empty: in YAML # starts a comment, so quote the channel, e.g. '#sales'")
    ]


@pytest.mark.parametrize(
    ("leads", "message"),
    [
        (
            "[{name: a, when: {lead_source: x}, policy: demo}, "
            "{name: b, when: {lead_source: x}, policy: demo}]",
            "rule 'b' can never match: rule 'a' (line 30) takes every lead it matches",
        ),
        (
            "[{name: a, when: {lead_source: [x, y]}, policy: demo}, "
            "{name: b, when: {lead_source: x, country: US}, policy: demo}]",
            "rule 'b' can never match: rule 'a' (line 30) takes every lead it matches",
        ),
        (
            "[{name: a, when: always, policy: demo}, {name: b, when: {x: y}, policy: demo}]",
            "rule 'b' can never match: rule 'a' (line 30) before it matches every lead",
        ),
        (
            "[{name: a, when: {x: y}, policy: demo}, {name: a, when: {x: z}, policy: demo}]",
            "lead rule name 'a' is used twice",
        ),
        (
            "[{name: a, when: {x: y}, policy: demo}, {name: b, policy: demo}]",
            "the fallback is never used: rule 'b' matches every lead; make its policy the "
            "fallback instead",
        ),
    ],
)
def test_rules_that_can_never_match(tmp_path: Path, leads: str, message: str) -> None:
    routing = f"routing:\n  main:\n    leads: {leads}\n    fallback: ignore\n"
    policy = POLICY[: POLICY.index("routing:")]
    errors = errors_of(tmp_path, {"a.yaml": BASE + policy + routing})
    assert [e.message for e in errors] == [message]


def test_portals_and_catch_all_blocks(tmp_path: Path) -> None:
    policy = POLICY[: POLICY.index("routing:")]
    routing = """\
routing:
  us: {portals: [1, 2, 2], fallback: demo}
  eu: {portals: [3, 1], fallback: demo}
  all: {fallback: demo}
  rest: {fallback: ignore}
"""
    errors = errors_of(tmp_path, {"a.yaml": BASE + policy + routing})
    assert [(e.line, e.message) for e in errors] == [
        (29, "portal 2 is listed twice"),
        (30, "portal 1 is already served by 'us'"),
        (
            32,
            "routing 'rest' has no `portals`, like 'all': only one block may serve all other "
            "portals",
        ),
    ]


def test_team_actions_need_team_support(tmp_path: Path) -> None:
    team = BASE.replace('    channel: "#sales"\n', "").replace(
        "    managers: [{name: Mia Manager, email: mia@example.com, slack: U0MANAGER}]\n", ""
    )
    errors = errors_of(tmp_path, {"a.yaml": team + POLICY})
    assert [e.message for e in errors] == [
        "notify_manager: team 'sdr' has no managers",
        "notify_channel: team 'sdr' has no channel",
    ]


def test_empty_directory_and_missing_directory(tmp_path: Path) -> None:
    from sla_bot.rules.loader import load_directory

    assert [e.message for e in load_directory(tmp_path).errors] == ["no *.yaml rule files"]
    assert [e.message for e in load_directory(tmp_path / "nope").errors] == ["not a directory"]


def test_no_routing_at_all(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"a.yaml": BASE})
    assert [e.message for e in errors] == ["no routing block: without one every lead is ignored"]


def test_typo_in_a_required_key_is_one_error(tmp_path: Path) -> None:
    text = BASE.replace("timezone: America/New_York", "timezon: America/New_York") + POLICY
    errors = errors_of(tmp_path, {"a.yaml": text})
    assert [(e.line, e.message) for e in errors] == [
        (5, "unknown key 'timezon' (did you mean 'timezone'?)")
    ]


def test_settings_may_be_set_once_across_files(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path, {"a.yaml": BASE + POLICY, "b.yaml": "settings:\n  default_calendar: ny\n"}
    )
    assert where(errors) == [("b.yaml", 2, 3)]
    assert errors[0].message.startswith("setting 'default_calendar' is already set in ")


def test_wrong_shape_of_a_definition(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, {"a.yaml": BASE + POLICY + "calendars2: 1\n"})
    assert [e.message for e in errors] == [
        "unknown top-level key 'calendars2' (did you mean 'calendars'?)"
    ]
    errors = errors_of(
        tmp_path, {"a.yaml": BASE.replace("  sdr:\n", "  sdr: [1]\n  x:\n") + POLICY}
    )
    assert "should be a mapping of key: value, got list" in errors[0].message
