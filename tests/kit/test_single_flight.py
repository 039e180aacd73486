"""Single-flight refresh across processes (issue #13, acceptance): 8 processes of 20 threads each
share one token store and call `access_token()` continuously across at least five
access-token expiries of a real server. Exactly one refresh per expiry, no
`invalid_grant`, the session never revoked. The same load with the store's lock turned
off must fail these checks: that proves they can."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from sqlalchemy import select

from pitpass.db.models import OAuthSession, RefreshToken
from pitpass_kit.client import OAuthClient
from pitpass_kit.stores import FileTokenStore, RedisTokenStore, TokenStore
from tests.support import LiveServer, live_server, require_redis

ROOT = Path(__file__).resolve().parents[2]
STAFF = "staff@example.com"
MEMBER = "driver@example.com"
PASSWORD = "a sturdy test password"
PROCESSES = 8
# The shortest lifetime staff may set; the kit refreshes at half of it, so every 5 s.
ACCESS_TOKEN_SECONDS = 10
REFRESH_PERIOD = ACCESS_TOKEN_SECONDS / 2
EXPIRIES = 5
Shared = tuple[TokenStore, dict[str, Any]]


@dataclass
class Load:
    tokens: set[str]
    errors: dict[str, int]
    calls: int
    refresh_times: list[float]  # server side: when each refresh token was issued
    session_revoked: bool


@dataclass
class Rig:
    server: LiveServer
    client_id: str
    secret: str

    def run(self, store: TokenStore, job: dict[str, Any], seconds: float) -> Load:
        """Sign in once, then PROCESSES workers on `store` for `seconds`."""
        client = OAuthClient(self.issuer, self.client_id, self.secret, store=store)
        first = client.password_limited(MEMBER, PASSWORD, scope="iracing.auth")
        job = job | {
            "base_url": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.secret,
            "seconds": seconds,
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.kit.single_flight_worker", json.dumps(job)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        reports = []
        for worker in workers:
            out, _ = worker.communicate(timeout=seconds + 120)
            assert worker.returncode == 0, out
            reports.append(json.loads(out))
        errors: dict[str, int] = {}
        for report in reports:
            for name, count in report["errors"].items():
                errors[name] = errors.get(name, 0) + count
        session_id = jwt.decode(first.access_token, options={"verify_signature": False})
        return Load(
            tokens={token for report in reports for token in report["tokens"]},
            errors=errors,
            calls=sum(report["calls"] for report in reports),
            **self.session_record(session_id["session_id"]),
        )

    @property
    def issuer(self) -> str:
        return f"{self.server.base_url}/oauth2"

    def session_record(self, session_id: str) -> dict[str, Any]:
        with self.server.provision.context.session() as db:
            issued = db.scalars(
                select(RefreshToken.created_at)
                .where(RefreshToken.session_id == session_id)
                .order_by(RefreshToken.created_at)
            ).all()
            session = db.get(OAuthSession, session_id)
            assert session is not None
            # The first refresh token came with the sign-in; each later one is a refresh.
            return {
                "refresh_times": [when.timestamp() for when in issued[1:]],
                "session_revoked": session.revoked_at is not None,
            }


def problems(load: Load) -> list[str]:
    """What a single-flight client must never cause; empty when all is well."""
    found = []
    if load.errors:
        found.append(f"errors: {load.errors}")
    if load.session_revoked:
        found.append("the session was revoked (a refresh token was reused)")
    refreshes = len(load.refresh_times)
    if refreshes < EXPIRIES:
        found.append(f"only {refreshes} refreshes: the load did not span {EXPIRIES} expiries")
    gaps = [later - earlier for earlier, later in itertools.pairwise(load.refresh_times)]
    # One refresh per expiry: consecutive refreshes a whole period apart, give or take.
    crowded = [round(gap, 3) for gap in gaps if gap < REFRESH_PERIOD * 0.7]
    if crowded:
        found.append(f"refreshes closer together than one expiry: {crowded} s apart")
    # Every refresh produced a token some thread used, none went to waste.
    if len(load.tokens) < refreshes:
        found.append(f"{refreshes} refreshes but only {len(load.tokens)} tokens ever used")
    return found


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with live_server(tmp_path_factory.mktemp("single-flight"), {}) as server:
        server.provision.member(STAFF, PASSWORD, staff=True)
        server.provision.member(MEMBER, PASSWORD)
        client_id, secret = server.provision.client(
            STAFF, "Shared Token Tool", "server-side", ("password_limited",)
        )
        assert secret is not None
        server.provision.add_to_access_list(client_id, MEMBER, STAFF)
        lifetimes = server.pitpass(
            "clients",
            "set-lifetimes",
            client_id,
            "--as",
            STAFF,
            "--access-token-seconds",
            str(ACCESS_TOKEN_SECONDS),
        )
        assert lifetimes.returncode == 0, lifetimes.stderr
        yield Rig(server, client_id, secret)


@pytest.fixture
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    """A new store of the kind the test names, and how the workers open it."""
    if request.param == "file":
        path = tmp_path / "shared" / "tokens.json"
        yield FileTokenStore(path), {"store": "file", "path": str(path)}
        return
    url = require_redis()
    key = f"pitpass-kit-test:{uuid.uuid4()}"
    yield RedisTokenStore(url, key), {"store": "redis", "redis_url": url, "key": key}
    redis.Redis.from_url(url).delete(key, f"{key}:lock")


STORES = ["file", pytest.param("redis", marks=pytest.mark.services)]


@pytest.mark.parametrize("shared_store", STORES, indirect=True)
def test_one_refresh_per_expiry_across_processes(rig: Rig, shared_store: Shared) -> None:
    store, job = shared_store
    load = rig.run(store, job, seconds=REFRESH_PERIOD * (EXPIRIES + 1) + 1)
    assert problems(load) == [], load
    assert load.calls > PROCESSES * 100


@pytest.mark.parametrize("shared_store", STORES, indirect=True)
def test_without_the_lock_the_same_load_fails(rig: Rig, shared_store: Shared) -> None:
    store, job = shared_store
    # The first expiry is enough for several processes to spend one refresh token.
    load = rig.run(store, job | {"unlocked": True}, seconds=REFRESH_PERIOD + 3)
    found = problems(load)
    assert any(problem.startswith("errors:") for problem in found), found
    assert load.session_revoked, found
