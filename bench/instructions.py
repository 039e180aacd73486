"""Instructions per request of the server, counted by callgrind: to compare two versions.

Requests per second on a shared virtual machine swing by a third from one hour
to the next (the same code, `openssl speed` included). callgrind counts the
instructions the server process executes instead, which repeat within 0.3%
run after run, so a change's effect shows even when it is a few percent. It
counts user-space instructions only: the kernel's side of a syscall, and time
spent waiting on a disk or a socket, are not in it; `bench protocol` measures
those.

The server runs under `valgrind --tool=callgrind` (about fifty times slower)
on one CPU. A warm-up of a quarter of the requests runs first; the counters are
then zeroed, the measured requests sent by 16 keep-alive connections, and the
counters dumped (`callgrind_control`).
"""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.protocol import FormFor, Request, Workload, load, seeded_server

SCENARIOS = ("introspect", "refresh", "code")


def run(engine: str, scenario: str, requests: int, users: int, cpu: int) -> dict[str, Any]:
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is not installed (apt-get install -y valgrind)")
    warm_up = max(users, requests // 4)
    codes = requests + warm_up + users * 4
    with tempfile.TemporaryDirectory() as out:
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.out",
            "--dump-instr=no",
            "--collect-jumps=no",
        ]
        with seeded_server(engine, codes, cpu, wrapper) as (port, pid, seeded):
            work = Workload(port, seeded)
            access_token = work.redeem()["access_token"]

            def forms() -> tuple[FormFor, Request]:
                # New chains for each run: the last token of a chain stays with its run.
                if scenario == "refresh":
                    return work.refresh(users)
                if scenario == "code":
                    return work.code()
                return work.introspect(access_token)

            asyncio.run(load(port, pid, users, math.inf, warm_up, *forms()))
            _callgrind_control("-z", pid)  # zero the counters
            measured = asyncio.run(load(port, pid, users, math.inf, requests, *forms()))
            _callgrind_control("-d", pid)  # dump them: callgrind.out.1
            instructions = _dumped_total(Path(out) / "callgrind.out.1")
    if measured["failures"]:
        raise SystemExit(f"bench: {measured['failures']} of the measured requests failed")
    return {
        "engine": engine,
        "scenario": scenario,
        "requests": measured["requests"],
        "instructions_per_request": round(instructions / measured["requests"]),
    }


def _callgrind_control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def _dumped_total(dump: Path) -> int:
    """The `summary:` line of a dump, which the server writes a moment after being asked."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if dump.exists():
            for line in dump.read_text().splitlines():
                if line.startswith("summary:"):
                    return int(line.split()[1])
        time.sleep(0.1)
    raise SystemExit(f"bench: callgrind wrote no dump at {dump}")
