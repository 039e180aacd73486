"""Issue #11, defects 2 to 4: a real `pitpass serve` on a PostgreSQL cluster and a Redis of
the test's own, which are stopped, frozen and started again under it.

During an outage: 503 `temporarily_unavailable` in the error shape (protocol, API) or
the 503 page, never a 500, and the process lives; /readyz names what is down. After:
the first request succeeds, with no restart of Pitpass.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest

from pitpass.core.masking import mask_secret
from pitpass.core.policy import ERRORS
from tests.e2e.oauth_world import (
    CALLBACK,
    CSRF_FIELD,
    PASSWORD,
    STAFF,
    World,
    expect_error,
    masked,
)
from tests.e2e.own_services import OwnPostgres, OwnRedis, own_postgres, own_redis
from tests.support import live_server, smtp_env, smtp_server

pytestmark = pytest.mark.services

STORAGE_TIMEOUT_SECONDS = 1.0
# What "answered by its deadline" allows beyond the storage deadline: the request's own
# work and a loaded machine's scheduling, well under the seconds a hung request takes.
DEADLINE_SLACK_SECONDS = 2.0


@dataclass
class Outages:
    world: World
    postgres: OwnPostgres
    redis: OwnRedis


@pytest.fixture(scope="module")
def outages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outages]:
    with ExitStack() as stack:
        postgres = stack.enter_context(own_postgres())
        redis = stack.enter_context(own_redis())
        mailbox, port = stack.enter_context(smtp_server())
        env = smtp_env(port) | {
            "PITPASS_DATABASE_URL": postgres.url,
            "PITPASS_REDIS_URL": redis.url,
            "PITPASS_REDIS_KEY_PREFIX": f"pitpass-test-{uuid.uuid4().hex[:12]}",
            "PITPASS_STORAGE_TIMEOUT_SECONDS": str(STORAGE_TIMEOUT_SECONDS),
            "PITPASS_PASSWORD_LIMITED_RATE": "100/hour",
        }
        server = stack.enter_context(live_server(tmp_path_factory.mktemp("outages"), env))
        world = World(server, mailbox)
        world.member(STAFF, staff=True)
        yield Outages(world, postgres, redis)
        assert server.process.poll() is None, "the server died during the outages"
        assert " 500 " not in server.log_text(), server.log_text()


@dataclass
class Chain:
    """A password_limited client, its member, and a refresh token to rotate."""

    form: dict[str, str]
    auth: dict[str, str]
    refresh_token: str

    def refresh(self, world: World, timeout: float = 30) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        response = httpx.post(f"{world.issuer}/token", data=form | self.auth, timeout=timeout)
        if response.status_code == 200:
            self.refresh_token = response.json()["refresh_token"]
        return response


def new_chain(world: World) -> Chain:
    name = uuid.uuid4().hex[:8]
    email = f"driver-{name}@example.com"
    world.member(email)
    client_id, secret = world.client(f"Tool {name}", flows=("password_limited",), redirect_uris=())
    world.allow(client_id, email)
    auth = {"client_id": client_id, "client_secret": masked(secret, client_id)}
    form = auth | {
        "grant_type": "password_limited",
        "username": email,
        "password": mask_secret(PASSWORD, email),
    }
    granted = world.token(**form)
    assert granted.status_code == 200, granted.text
    return Chain(form, auth, granted.json()["refresh_token"])


def signed_in(world: World) -> tuple[httpx.Client, str]:
    """A browser signed in to the portal, and an authorization URL of a client."""
    email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    world.member(email)
    client_id, _secret = world.client(f"Web {uuid.uuid4().hex[:6]}")
    browser = world.browser()
    world.sign_in(browser, email)
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK})
    return browser, f"/oauth2/authorize?{query}"


def expect_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")


def expect_api_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"


def readiness(world: World) -> tuple[int, dict[str, str]]:
    response = httpx.get(f"{world.base}/readyz", timeout=30)
    return response.status_code, response.json()


def test_postgres_stopped_answers_503_everywhere_and_recovers_without_restart(
    outages: Outages,
) -> None:
    world = outages.world
    chain = new_chain(world)
    browser, authorize = signed_in(world)
    outages.postgres.stop()
    try:
        expect_error(chain.refresh(world), "temporarily_unavailable", 503)
        expect_error(world.token(**chain.form), "temporarily_unavailable", 503)
        expect_page(browser.get(authorize), 503)
        expect_page(browser.get("/account"), 503)
        expect_page(browser.get("/portal"), 503)
        expect_api_unavailable(browser.get("/api/v1/me"))
        assert readiness(world) == (
            503,
            {"status": "unavailable", "database": "unreachable", "redis": "ok"},
        )
    finally:
        outages.postgres.start()
    # Back: the first request of each kind succeeds.
    assert chain.refresh(world).status_code == 200
    assert browser.get("/account").status_code == 200
    assert browser.get("/api/v1/me").status_code == 200
    assert browser.get(authorize).status_code in (200, 302)
    assert readiness(world)[0] == 200


def test_redis_stopped_fails_password_checks_closed_and_recovers_without_restart(
    outages: Outages,
) -> None:
    world = outages.world
    chain = new_chain(world)
    outages.redis.stop()
    try:
        # Fails closed: no password is checked while its guesses cannot be counted.
        expect_error(world.token(**chain.form), "temporarily_unavailable", 503)
        browser = world.browser()
        csrf = CSRF_FIELD.search(browser.get("/signin").text)
        assert csrf is not None
        form = {"csrf_token": csrf.group(1), "email": "x@example.com", "password": "wrong"}
        expect_page(browser.post("/signin", data=form), 503)
        # Refreshing needs no limiter, and a wrong secret is still refused (fails open).
        assert chain.refresh(world).status_code == 200
        wrong = chain.auth | {"client_secret": "wrong"}
        refused = world.token(grant_type="refresh_token", refresh_token="x", **wrong)
        expect_error(refused, "invalid_client", ERRORS["invalid_client"].status)
        assert readiness(world) == (
            503,
            {"status": "unavailable", "database": "ok", "redis": "unreachable"},
        )
    finally:
        outages.redis.start()
    assert world.token(**chain.form).status_code == 200
    assert readiness(world)[0] == 200


def test_frozen_postgres_every_request_is_answered_by_its_deadline(outages: Outages) -> None:
    """SIGSTOP the whole server: each request is answered (503) by its deadline instead of
    hanging (the protocol's: the storage deadline; a page's or the API's: twice that);
    after SIGCONT, a rotation the server committed for a client that had given up is
    retried by it once, and the chain lives."""
    world = outages.world
    chains = [new_chain(world) for _ in range(4)]
    presented = [chain.refresh_token for chain in chains]
    browser, authorize = signed_in(world)
    protocol = STORAGE_TIMEOUT_SECONDS + DEADLINE_SLACK_SECONDS
    page = 2 * STORAGE_TIMEOUT_SECONDS + DEADLINE_SLACK_SECONDS
    requests: list[tuple[float, Callable[[], int]]] = [
        (protocol, lambda chain=chain: chain.refresh(world, timeout=20).status_code)  # type: ignore[misc]
        for chain in chains
    ]
    requests += [
        (protocol, lambda: readiness(world)[0]),
        (protocol, lambda: world.token(**chains[0].form).status_code),
        (page, lambda: browser.get("/account", timeout=20).status_code),
        (page, lambda: browser.get("/api/v1/me", timeout=20).status_code),
        (page, lambda: browser.get(authorize, timeout=20).status_code),
    ]

    def timed(request: tuple[float, Callable[[], int]]) -> tuple[float, float, int]:
        deadline, send = request
        started = time.monotonic()
        status = send()
        return deadline, time.monotonic() - started, status

    with outages.postgres.frozen(), ThreadPoolExecutor(len(requests)) as pool:
        answered = list(pool.map(timed, requests))
    for deadline, seconds, status in answered:
        assert status == 503, answered
        assert seconds < deadline, answered
    # Thawed: every client retries the refresh token it never got an answer for, once.
    for chain, token in zip(chains, presented, strict=True):
        assert chain.refresh_token == token
        assert chain.refresh(world).status_code == 200
        assert chain.refresh(world).status_code == 200  # and the chain goes on
    assert browser.get("/account").status_code == 200
