"""Load one YAML rule file into plain data while remembering where every node came from.

Validation happens on plain dicts and lists (pydantic), but errors must point at `file:line:col`,
so the loader composes the node tree itself and records the position of every key and value under
its path, e.g. ("policies", "demo", "first_touch", "within").

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: only true/false are booleans and
there are no sexagesimal numbers, so `country: NO` stays Norway, `yes` stays a string and `8:00`
is not 480. Duplicate keys are errors instead of silently keeping the last one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from sla_bot.rules.errors import RuleError

Path = tuple[str | int, ...]
Pos = tuple[int, int]
KEY = "[key]"  # ends a path that means the mapping key itself rather than its value

_TAG = "tag:yaml.org,2002:"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit types (plus dates and timestamps)."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012


_Loader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver(
    _TAG + "int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _TAG + "float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)
for _first, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        if _tag in (_TAG + "timestamp", _TAG + "merge"):
            _Loader.add_implicit_resolver(_tag, _regexp, [_first])


@dataclass
class Positions:
    """Where each value (and each mapping key) of one file starts, keyed by path."""

    file: str
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)

    def of_value(self, path: Path) -> Pos:
        """Position of the value at path, or of its nearest ancestor that exists."""
        return self._nearest(self.values, path)

    def of_key(self, path: Path) -> Pos:
        """Position of the key naming path (falls back to the value, then to ancestors)."""
        if path in self.keys:
            return self.keys[path]
        return self.of_value(path)

    def _nearest(self, table: dict[Path, Pos], path: Path) -> Pos:
        for n in range(len(path), -1, -1):
            if path[:n] in table:
                return table[path[:n]]
        return (1, 1)


@dataclass
class LoadedFile:
    """A parsed file: plain data, node positions, and any structural errors found on the way."""

    data: Any
    positions: Positions
    errors: list[RuleError]


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> RuleError:
    """A YAML syntax error where the fix goes.

    An unclosed `{` or `[` is only noticed where the parser gives up, often lines later; the
    mistake is at the opening bracket, so that is where it is reported.
    """
    context, problem = exc.context_mark, exc.problem_mark
    what = exc.context or ""
    if (
        context
        and problem
        and problem.line > context.line
        and what.startswith("while parsing a flow")
    ):
        opener, closer = ("{", "}") if "mapping" in what else ("[", "]")
        return RuleError(
            file,
            context.line + 1,
            context.column + 1,
            f"YAML: '{opener}' is not closed: expected ',' or '{closer}' before line "
            f"{problem.line + 1}, column {problem.column + 1}",
        )
    mark = problem or context
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = " ".join(p for p in (exc.context, exc.problem) if p)
    return RuleError(file, line, col, f"YAML: {message}")


def load_yaml(text: str, file: str) -> LoadedFile:
    """Parse one file; YAML syntax errors come back as RuleErrors, never as exceptions."""
    positions = Positions(file)
    errors: list[RuleError] = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return LoadedFile(None, positions, [_syntax_error(exc, file)])
    except yaml.YAMLError as exc:  # pragma: no cover - reader errors without a mark
        return LoadedFile(None, positions, [RuleError(file, 1, 1, f"YAML: {exc}")])
    finally:
        loader.dispose()
    if node is None:
        return LoadedFile({}, positions, errors)
    walker = _Walker(loader, positions, errors)
    return LoadedFile(walker.build(node, ()), positions, errors)


def _pos(node: yaml.Node) -> Pos:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    """Builds Python values from nodes, recording positions and duplicate keys."""

    def __init__(self, loader: _Loader, positions: Positions, errors: list[RuleError]) -> None:
        self.loader = loader
        self.positions = positions
        self.errors = errors

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.positions.values.setdefault(path, _pos(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self._error(node, f"YAML: {exc.problem}")
            return node.value
        except ValueError as exc:  # e.g. 2026-02-30 looks like a date but is not one
            self._error(node, f"YAML: {node.value!r} is not a valid date or time ({exc})")
            return node.value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        merged: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merged |= self._merge(value_node, path, out)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._error(key_node, "mapping keys must be plain names")
                continue
            # The source text, not the resolved value: a key like 2026-11-28 or 123 stays text.
            key = str(key_node.value)
            if key in out and key not in merged:
                first = self.positions.keys.get((*path, key), (0, 0))[0]
                self._error(key_node, f"duplicate key '{key}' (first defined on line {first})")
                continue
            merged.discard(key)
            self.positions.keys[(*path, key)] = _pos(key_node)
            self.positions.values.pop((*path, key), None)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _merge(self, value_node: yaml.Node, path: Path, out: dict[str, Any]) -> set[str]:
        """`<<: *defaults` copies keys that explicit keys may then override."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        added: set[str] = set()
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self._error(source, "`<<` must merge a mapping (an alias like *defaults)")
                continue
            for key, value in self._mapping(source, path).items():
                if key not in out:
                    out[key] = value
                    added.add(key)
        return added

    def _error(self, node: yaml.Node, message: str) -> None:
        line, col = _pos(node)
        self.errors.append(RuleError(self.positions.file, line, col, message))
