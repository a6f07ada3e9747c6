"""The demo's service processes: the code of `sla-bot serve` and `sla-bot worker`, on demo time.

    python -m sla_bot.demo.service serve|worker --speed N --origin EPOCH --start ISO

Only `sla-bot demo` starts this. The clock travels in these arguments, never in a setting or an
environment variable, so `sla-bot serve` cannot be made to run on it.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence

from sla_bot import cli
from sla_bot.demo.clock import SpeedClock


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sla_bot.demo.service")
    parser.add_argument("role", choices=("serve", "worker"))
    parser.add_argument("--speed", type=float, required=True)
    parser.add_argument("--origin", type=float, required=True)
    parser.add_argument("--start", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    clock = SpeedClock.from_args(args.speed, args.origin, args.start)
    settings = cli.settings_from_env()
    cli.start_logging(settings)
    if args.role == "worker":
        return cli.run_worker(settings, clock)
    worker = [sys.executable, "-m", "sla_bot.demo.service", "worker", *clock.argv()]
    return cli.serve(settings, functools.partial(cli.app_factory, clock), worker)


if __name__ == "__main__":
    raise SystemExit(main())
