"""Where we are heading, checked: the domain (sla_bot/engine, sla_bot/rules) imports no adapter,
no web module and no command, at module level or inside a function; and no module imports
another package's private names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = ("sla_bot/engine", "sla_bot/rules")
FORBIDDEN = (
    "integrations",
    "sla_bot.web",
    "sla_bot.cli",
    "sla_bot.worker",
    "sla_bot.worker_jobs",
    "sla_bot.fetching",
    "sla_bot.services",
    "sla_bot.server",
    "sla_bot.portals",
    "sla_bot.reconcile",
    "flask",
    "slack_sdk",
    "hubspot",
    "requests",
)


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_the_domain_imports_no_adapter_web_module_or_command() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line}: imports {name}"
        for package in DOMAIN
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offences == []


def test_no_module_imports_another_modules_private_names() -> None:
    offences = []
    for package in ("sla_bot", "integrations"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    own = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                    package_of = own.rsplit(".", 1)[0]  # a package's modules share its privates
                    if node.module == package_of or node.module.startswith(package_of + "."):
                        continue
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            offences.append(
                                f"{path.relative_to(ROOT)}:{node.lineno}: "
                                f"{alias.name} from {node.module}"
                            )
    assert offences == []
