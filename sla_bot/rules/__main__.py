"""`python -m sla_bot.rules check|simulate`: the rules commands without the rest of the CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sla_bot.rules.cli import register


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sla_bot.rules")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["rules", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
