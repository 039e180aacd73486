"""The benchmark runner's command line."""

from __future__ import annotations

import argparse
import json
import os
import sys

from bench import instructions, protocol, registration, verifier


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    scenarios = parser.add_subparsers(dest="scenario_name", required=True)
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
    proto = scenarios.add_parser(
        "protocol", help="token endpoint grants, introspection and offline verification"
    )
    proto.add_argument(
        "--engine",
        action="append",
        choices=["sqlite", "postgresql"],
        help="repeatable; default: both",
    )
    proto.add_argument(
        "--scenario",
        action="append",
        choices=list(protocol.SCENARIOS),
        help="repeatable; default: all",
    )
    proto.add_argument("--users", type=int, default=16, help="concurrent connections")
    proto.add_argument("--seconds", type=float, default=10.0, help="time bound per scenario")
    proto.add_argument("--max-requests", type=int, default=20_000, help="request bound")
    proto.add_argument("--server-cpu", type=int, default=0, help="taskset CPU for the server")
    proto.add_argument("--load-cpu", type=int, default=1, help="CPU for this load generator")
    counted = scenarios.add_parser(
        "instructions",
        help="instructions per request under callgrind: steady enough to compare two versions",
    )
    counted.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    counted.add_argument("--scenario", choices=list(instructions.SCENARIOS), default="introspect")
    counted.add_argument("--requests", type=int, default=1_000)
    counted.add_argument("--users", type=int, default=16, help="concurrent connections")
    counted.add_argument("--server-cpu", type=int, default=0, help="taskset CPU for the server")
    counted.add_argument("--load-cpu", type=int, default=1, help="CPU for this load generator")
    verifying = scenarios.add_parser(
        "verifier",
        help="pitpass_kit.resource.TokenVerifier on one core: fresh and repeated tokens",
    )
    verifying.add_argument("--cpu", type=int, default=0, help="the CPU to pin to")
    verifying.add_argument("--seconds", type=float, default=3.0, help="time bound per measure")
    verifying.add_argument(
        "--tokens", type=int, default=30_000, help="distinct tokens minted for 'fresh'"
    )
    args = parser.parse_args(argv)
    if args.scenario_name == "protocol" and args.scenario is None:
        args.scenario = list(protocol.SCENARIOS)
    if args.scenario_name == "protocol":
        results = protocol.run(
            engines=args.engine or ["sqlite", "postgresql"],
            scenarios=args.scenario,
            users=args.users,
            seconds=args.seconds,
            max_requests=args.max_requests,
            server_cpu=args.server_cpu,
            load_cpu=args.load_cpu,
        )
    elif args.scenario_name == "verifier":
        results = verifier.run(args.cpu, args.seconds, args.tokens)
    elif args.scenario_name == "instructions":
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {args.load_cpu})
        results = instructions.run(
            args.engine, args.scenario, args.requests, args.users, args.server_cpu
        )
    else:
        results = registration.run(
            engines=args.engine or ["sqlite", "postgresql"],
            requests=args.requests,
            clients=args.clients,
            repeat=args.repeat,
        )
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
