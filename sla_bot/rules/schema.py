"""JSON schema of one rules file, for editors (YAML language servers) and reviewers.

Generated from the pydantic models; rules/schema.json is committed and a test checks it is
current. Regenerate with `python -m sla_bot.rules.schema` (writes rules/schema.json) or
`python -m sla_bot.rules.schema --check`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sla_bot.rules.fields import SELECTOR_SCHEMA_MARK
from sla_bot.rules.model import RulesFile
from sla_bot.rules.select import OPERATORS

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "rules" / "schema.json"

_VALUE = {"type": ["string", "number", "boolean"]}
_CONDITION = {
    "description": "A value (equals), a list (in), or a mapping of operators.",
    "anyOf": [
        _VALUE,
        {"type": "array", "items": _VALUE},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {op: {} for op in OPERATORS},
        },
    ],
}
_SELECTOR = {
    "description": "Conditions on contact properties; all keys must hold. `always` matches all.",
    "anyOf": [
        {"const": "always"},
        {
            "type": "object",
            "properties": {
                "all": {"type": "array", "items": {"$ref": "#/$defs/Selector"}},
                "any": {"type": "array", "items": {"$ref": "#/$defs/Selector"}},
                "not": {"$ref": "#/$defs/Selector"},
            },
            "additionalProperties": _CONDITION,
        },
    ],
}


# Short forms accepted before validation, e.g. `do: [notify_owner]`, `closed: [2026-12-24]`.
_SHORTHANDS: dict[str, list[dict[str, Any]]] = {
    "Action": [{"enum": ["notify_owner", "notify_manager", "notify_channel", "reassign"]}],
    "DateRange": [{"type": "string", "format": "date"}],
    "WarningRule": [{"type": "string", "description": 'e.g. "80%" or "10m before"'}],
}


def _swap_marks(node: Any) -> Any:
    if node == SELECTOR_SCHEMA_MARK:
        return {"$ref": "#/$defs/Selector"}
    ref = node.get("$ref", "") if isinstance(node, dict) and len(node) == 1 else ""
    if ref.removeprefix("#/$defs/") in _SHORTHANDS:
        return {"anyOf": [*_SHORTHANDS[ref.removeprefix("#/$defs/")], node]}
    if isinstance(node, dict):
        return {k: _swap_marks(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_swap_marks(v) for v in node]
    return node


def build_schema() -> dict[str, Any]:
    schema = _swap_marks(RulesFile.model_json_schema(mode="validation"))
    schema["$defs"]["Selector"] = _SELECTOR
    holidays = schema["$defs"]["Calendar"]["properties"]["holidays"]
    holidays["anyOf"] = [
        {"$ref": "#/$defs/HolidaySource"},
        {"type": "array", "items": holidays.pop("items")},
    ]
    holidays.pop("type", None)
    schema["patternProperties"] = {"^x-": {"description": "free space for YAML anchors"}}
    schema["title"] = "sla-bot rules file"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sla_bot.rules.schema")
    parser.add_argument("--output", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m sla_bot.rules.schema", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
