"""The benchmark runner's command line."""

from __future__ import annotations

import argparse
import json
import sys

from bench import registration


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    scenarios = parser.add_subparsers(dest="scenario", required=True)
    reg = scenarios.add_parser(
        "registration", help="staff queue, portal and API lists over seeded requests and clients"
    )
    reg.add_argument(
        "--engine",
        action="append",
        choices=["sqlite", "postgresql"],
        help="repeatable; default: both",
    )
    reg.add_argument("--requests", type=int, default=10_000)
    reg.add_argument("--clients", type=int, default=10_000)
    reg.add_argument("--repeat", type=int, default=30, help="timed calls per list")
    args = parser.parse_args(argv)
    results = registration.run(
        engines=args.engine or ["sqlite", "postgresql"],
        requests=args.requests,
        clients=args.clients,
        repeat=args.repeat,
    )
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
