"""Load scenarios for the protocol's hot paths (issue #4, item 8).

The server runs as its own process (`pitpass serve`), pinned with `taskset` to
one CPU; this process generates the load from another CPU with a small
keep-alive HTTP/1.1 client (16 connections by default), bounded in time and in
requests. Scenarios:

- `refresh`: each virtual user keeps its own rotating refresh-token chain;
- `code`: authorization codes minted up front, one redeemed per request;
- `password`: the password_limited grant, compared with a bare argon2id verify on
  the server's core (before and after the load);
- `introspect`: RFC 7662 on one live access token;
- `verify`: offline verification of an access token against the JWKS, as a resource
  server does it: with joserfc (ARCHITECTURE.md's JOSE library) on one core and on
  every core, and with PyJWT on one core for comparison; beside them the ES256
  signature check alone, the ceiling of any verifier on one core.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import __version__ as joserfc_version
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import insert

from bench.registration import SECRET_KEY, database
from pitpass.config import load_settings
from pitpass.core.masking import mask_secret
from pitpass.db.migrate import upgrade
from pitpass.db.models import AccessListEntry, AuthorizationCode, utcnow
from pitpass.services import clients as clients_service
from pitpass.services import members
from pitpass.services.client_details import ClientDetails
from pitpass.services.context import AppContext

PASSWORD = "bench password 123"
CALLBACK = "https://bench.example/cb"
SCENARIOS = ("refresh", "code", "password", "introspect", "verify")

# The form a virtual user sends next, given its number and the last answer's body.
FormFor = Callable[[int, bytes | None], dict[str, str] | None]


class Request:
    """A pre-built HTTP/1.1 request; `body` may change per call (refresh chains)."""

    def __init__(self, path: str, headers: dict[str, str] | None = None) -> None:
        self.path = path
        self.headers = headers or {}

    def encode(self, form: dict[str, str]) -> bytes:
        body = urlencode(form).encode()
        head = [
            f"POST {self.path} HTTP/1.1",
            "Host: bench",
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> tuple[int, bytes]:
    writer.write(payload)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


async def load(
    port: int,
    pid: int,
    users: int,
    seconds: float,
    max_requests: int,
    next_form: FormFor,
    request: Request,
) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    sent = 0
    deadline = time.perf_counter() + seconds

    async def user(number: int) -> None:
        nonlocal failures, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        last: bytes | None = None
        while time.perf_counter() < deadline and sent < max_requests:
            form = next_form(number, last)
            if form is None:
                break
            sent += 1
            started = time.perf_counter()
            status, last = await _exchange(reader, writer, request.encode(form))
            latencies.append(time.perf_counter() - started)
            if status != 200:
                failures += 1
                last = None
        writer.close()

    started, cpu_before = time.perf_counter(), cpu_seconds(pid)
    await asyncio.gather(*(user(n) for n in range(users)))
    elapsed, cpu_after = time.perf_counter() - started, cpu_seconds(pid)
    latencies.sort()
    server_cpu = (
        round((cpu_after - cpu_before) / len(latencies) * 1e6)
        if cpu_before is not None and cpu_after is not None and latencies
        else None
    )
    return {
        "requests": len(latencies),
        "failures": failures,
        "seconds": round(elapsed, 2),
        "per_second": round(len(latencies) / elapsed, 1) if elapsed else 0,
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2) if latencies else None,
        "server_cpu_us_per_request": server_cpu,
    }


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), to report the server's cost
    per request: steadier than requests per second on a shared machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(
    url: str, data_dir: str, cpu: int | None, wrapper: Sequence[str] = ()
) -> Iterator[tuple[int, int]]:
    """`pitpass serve` on a free port, pinned to `cpu`, run under `wrapper` (say,
    valgrind) if given. (The port and the pid.)"""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITPASS_")} | {
        "PITPASS_DATABASE_URL": url,
        "PITPASS_SECRET_KEY": SECRET_KEY,
        "PITPASS_DATA_DIR": data_dir,
        "PITPASS_ISSUER": f"http://127.0.0.1:{port}/oauth2",
        "PITPASS_PASSWORD_LIMITED_RATE": "1000000/hour",
        "PITPASS_CLIENT_AUTH_FAILURES_PER_CLIENT": "1000000/minute",
    }
    command = [*wrapper, sys.executable, "-m", "pitpass", "serve", "--port", str(port)]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    with open(Path(data_dir) / "server.log", "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + (600 if wrapper else 30)  # valgrind starts slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"bench: the server did not start; see {data_dir}/server.log")
        yield port, process.pid  # taskset (and valgrind) exec the server: same pid
    finally:
        process.terminate()
        process.wait(timeout=60)


@contextmanager
def seeded_server(
    engine: str, codes: int, cpu: int | None, wrapper: Sequence[str] = ()
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """A fresh database with `_seed`'s client and codes, and a server on it.
    (The port, the pid, and what was seeded.)"""
    with database(engine) as url, tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(database_url=url, secret_key=SECRET_KEY, data_dir=data_dir)
        ctx = AppContext.from_settings(settings)
        upgrade(ctx.engine)
        ctx.keyring.prepare()  # as `pitpass db upgrade` does: store the token-hash key first
        seeded = _seed(ctx, codes)
        ctx.close()
        with server(url, data_dir, cpu, wrapper) as (port, pid):
            yield port, pid, seeded


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(ctx: AppContext, codes: int) -> dict[str, Any]:
    """A staff member, a member on a password-limited access list, one client, codes."""
    with ctx.session() as db:
        staff = members.create_member(
            db,
            members.NewMember("staff@bench.example", "Staff", PASSWORD, is_staff=True),
            actor_label="bench",
        )
        member = members.create_member(
            db, members.NewMember("racer@bench.example", "Racer", PASSWORD), actor_label="bench"
        )
        issued = clients_service.create_client(
            ctx,
            db,
            ClientDetails(
                client_name="Bench Client",
                client_type="server-side",
                flows=["authorization_code", "password_limited"],
                developer_name="Bench",
                developer_url="https://bench.example",
                developer_email="dev@bench.example",
                redirect_uris=[CALLBACK],
                audiences=["data-server"],
            ),
            staff,
        )
        db.add(
            AccessListEntry(
                client_pk=issued.client.id,
                member_id=member.id,
                added_by_id=staff.id,
                accepted_at=utcnow(),
            )
        )
        raw_codes = [secrets.token_urlsafe(24) for _ in range(codes)]
        now = utcnow()
        rows = [
            {
                "code_hash": ctx.keyring.token_hash(f"code:{code}"),
                "client_pk": issued.client.id,
                "member_id": member.id,
                "session_id": str(uuid.uuid4()),
                "redirect_uri": CALLBACK,
                "scope": "iracing.auth",
                "code_challenge": None,
                "code_challenge_method": None,
                "auth_time": now,
                "expires_at": now + timedelta(hours=1),
            }
            for code in raw_codes
        ]
        for start in range(0, len(rows), 2000):
            db.execute(insert(AuthorizationCode), rows[start : start + 2000])
        assert issued.secret is not None
        return {
            "client_id": issued.client.client_id,
            "secret": mask_secret(issued.secret, issued.client.client_id),
            "codes": raw_codes,
            "member_id": member.id,
        }


@dataclass(frozen=True)
class TokenCheck:
    """What a resource server knows to verify an access token offline (RFC 9068 §4)."""

    token: str
    jwks: dict[str, Any]
    issuer: str
    audience: str


def _verify_for(
    check: TokenCheck, seconds: float, max_tokens: int, library: str
) -> tuple[int, float]:
    """Verify the token again and again: signature, `typ`, `iss`, `aud`, `exp`.
    (How many, in how long.)"""
    if library == "joserfc":
        keys = KeySet.import_key_set(check.jwks)  # type: ignore[arg-type]
        registry = JWTClaimsRegistry(
            iss={"essential": True, "value": check.issuer},
            aud={"essential": True, "value": check.audience},
            exp={"essential": True},
        )

        def verify() -> None:
            token = jose_jwt.decode(check.token, keys, algorithms=["ES256"])
            if token.header.get("typ") != "at+jwt":
                raise ValueError("not an access token")
            registry.validate(token.claims)

    else:
        public = {k["kid"]: jwt.PyJWK(k).key for k in check.jwks["keys"]}

        def verify() -> None:
            header = jwt.get_unverified_header(check.token)
            if header.get("typ") != "at+jwt":
                raise ValueError("not an access token")
            jwt.decode(
                check.token,
                public[header["kid"]],
                algorithms=["ES256"],
                issuer=check.issuer,
                audience=check.audience,
            )

    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds and count < max_tokens:
        verify()
        count += 1
    return count, time.perf_counter() - started


def _ecdsa_ceiling(check: TokenCheck, seconds: float, max_tokens: int) -> tuple[int, float]:
    """The ES256 signature check alone, on the same token and key (`cryptography`):
    what no JOSE library can beat on one core. (How many, in how long.)"""
    signing_input, _, signature = check.token.rpartition(".")
    kid = extract_compact(check.token.encode()).protected["kid"]
    key = KeySet.import_key_set(check.jwks).get_by_kid(kid).public_key  # type: ignore[arg-type]
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))  # r ‖ s (RFC 7518)
    der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    message, algorithm = signing_input.encode(), ec.ECDSA(hashes.SHA256())
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds and count < max_tokens:
        key.verify(der, message, algorithm)
        count += 1
    return count, time.perf_counter() - started


def _verify_on_cpu(
    check: TokenCheck, seconds: float, max_tokens: int, cpu: int
) -> tuple[int, float]:
    os.sched_setaffinity(0, {cpu})
    return _verify_for(check, seconds, max_tokens, library="joserfc")


def _bare_argon2_seconds(cpu: int | None) -> float:
    """The median of 10 bare argon2id verifications, on `cpu` (the server's: the
    comparison is with what that core does for a sign-in)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    hasher = PasswordHasher()
    stored = hasher.hash(mask_secret(PASSWORD, "racer@bench.example"))
    samples = []
    for _ in range(10):
        started = time.perf_counter()
        hasher.verify(stored, mask_secret(PASSWORD, "racer@bench.example"))
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _bare_argon2_on(cpu: int | None) -> float:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return float(pool.apply(_bare_argon2_seconds, (cpu,)))


def run(
    engines: list[str],
    scenarios: list[str],
    users: int,
    seconds: float,
    max_requests: int,
    server_cpu: int | None,
    load_cpu: int | None,
) -> dict[str, Any]:
    if load_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {load_cpu})
    report: dict[str, Any] = {
        "users": users,
        "seconds": seconds,
        "max_requests": max_requests,
        "server_cpu": server_cpu,
        "load_cpu": load_cpu,
    }
    for engine in engines:
        with seeded_server(engine, max_requests + users * 2, server_cpu) as (port, pid, seeded):
            report[engine] = asyncio.run(
                _scenarios(port, pid, server_cpu, seeded, scenarios, users, seconds, max_requests)
            )
    return report


class Workload:
    """What each load scenario sends, for the seeded client of a running server."""

    TOKEN = Request("/oauth2/token")
    INTROSPECT = Request("/oauth2/introspect")

    def __init__(self, port: int, seeded: dict[str, Any]) -> None:
        self.port = port
        self.client = {"client_id": seeded["client_id"], "client_secret": seeded["secret"]}
        self.codes = iter(seeded["codes"])

    def redeem(self) -> dict[str, Any]:
        """Tokens for one of the seeded codes (set-up, not measured)."""
        response = httpx.post(
            f"http://127.0.0.1:{self.port}/oauth2/token", data=self._code_form(next(self.codes))
        )
        response.raise_for_status()
        return dict(response.json())

    def _code_form(self, code: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            **self.client,
        }

    def refresh(self, users: int) -> tuple[FormFor, Request]:
        """Each virtual user keeps its own rotating chain."""
        chains = [self.redeem()["refresh_token"] for _ in range(users)]

        def next_refresh(user: int, last: bytes | None) -> dict[str, str]:
            if last:
                chains[user] = json.loads(last)["refresh_token"]
            return {"grant_type": "refresh_token", "refresh_token": chains[user], **self.client}

        return next_refresh, self.TOKEN

    def code(self) -> tuple[FormFor, Request]:
        """One seeded code per request, until they run out."""

        def next_code(_user: int, _last: bytes | None) -> dict[str, str] | None:
            code = next(self.codes, None)
            return None if code is None else self._code_form(code)

        return next_code, self.TOKEN

    def password(self) -> tuple[FormFor, Request]:
        form = {
            "grant_type": "password_limited",
            "username": "racer@bench.example",
            "password": mask_secret(PASSWORD, "racer@bench.example"),
            **self.client,
        }
        return lambda _u, _l: form, self.TOKEN

    def introspect(self, access_token: str) -> tuple[FormFor, Request]:
        return lambda _u, _l: {"token": access_token, **self.client}, self.INTROSPECT


async def _scenarios(
    port: int,
    pid: int,
    server_cpu: int | None,
    seeded: dict[str, Any],
    scenarios: list[str],
    users: int,
    seconds: float,
    max_requests: int,
) -> dict[str, Any]:
    work = Workload(port, seeded)
    results: dict[str, Any] = {}

    if "refresh" in scenarios:
        results["refresh"] = await load(
            port, pid, users, seconds, max_requests, *work.refresh(users)
        )

    if "code" in scenarios:
        results["code"] = await load(port, pid, users, seconds, max_requests, *work.code())

    if "password" in scenarios:
        bare_before = _bare_argon2_on(server_cpu)
        outcome = await load(
            port, pid, users, seconds, max(1, max_requests // 50), *work.password()
        )
        # Before and after the load, on the server's core: a shared machine's speed drifts.
        bare = (bare_before + _bare_argon2_on(server_cpu)) / 2
        outcome["bare_argon2_verify_ms"] = round(bare * 1000, 2)
        if outcome["per_second"]:
            outcome["cost_vs_bare_argon2"] = round((1 / outcome["per_second"]) / bare, 2)
        results["password"] = outcome

    access_token = work.redeem()["access_token"]
    if "introspect" in scenarios:
        results["introspect"] = await load(
            port, pid, users, seconds, max_requests, *work.introspect(access_token)
        )

    if "verify" in scenarios:
        jwks = httpx.get(f"http://127.0.0.1:{port}/oauth2/jwks").json()  # fetched once, cached
        check = TokenCheck(
            access_token, jwks, f"http://127.0.0.1:{port}/oauth2", seeded["client_id"]
        )
        window = min(seconds, 5)
        one_core = _verify_for(check, window, max_requests, library="joserfc")
        cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
        with multiprocessing.get_context("spawn").Pool(len(cpus)) as pool:
            counts = pool.starmap(
                _verify_on_cpu, [(check, window, max_requests, cpu) for cpu in cpus]
            )
        pyjwt = _verify_for(check, window, max_requests, library="pyjwt")
        ceiling = _ecdsa_ceiling(check, window, max_requests)
        results["verify"] = {
            "library": f"joserfc {joserfc_version}",
            "tokens": one_core[0],
            "per_second_one_core": round(one_core[0] / one_core[1], 1),
            "per_second_all_cores": round(sum(c / t for c, t in counts), 1),
            "cores": len(cpus),
            "ecdsa_p256_ceiling_one_core": round(ceiling[0] / ceiling[1], 1),
            "pyjwt_per_second_one_core": round(pyjwt[0] / pyjwt[1], 1),
        }
    return results
