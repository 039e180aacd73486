"""`GET /metrics` in-process (metrics.py): who may read it behind `proxy_headers`, and the
series the request paths record: route templates, storage errors and waits, argon2 slots.

Counters are per process and other tests add to them, so these tests compare a scrape
taken before with one taken after."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pitpass import metrics
from pitpass.core.policy import OAuthError
from pitpass.storage.pg_connections import ConnectionLender
from tests.conftest import Site
from tests.oauth import in_process as here
from tests.support import Backend, free_port, postgres_database

METRICS_TOKEN = "metrics-token-0123456789-abcdefghijklmnop"
OUTSIDER = "203.0.113.5"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def local_scrape() -> Samples:
    return parse(metrics.exposition().decode())


def get(app: Any, peer: str, path: str = "/metrics", **headers: str) -> httpx.Response:
    """One request from TCP peer `peer`, through uvicorn's proxy-headers middleware as
    `pitpass serve` configures it (PITPASS_FORWARDED_ALLOW_IPS trusts 127.0.0.1)."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://pitpass") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(run())


@pytest.fixture
def guarded(site_factory: Any, sqlite_backend: Backend) -> Iterator[Any]:
    site: Site = site_factory(sqlite_backend, metrics_token=METRICS_TOKEN)
    yield ProxyHeadersMiddleware(site.app, trusted_hosts="127.0.0.1")


class TestWhoMayRead:
    def test_a_scraper_on_this_machine_needs_nothing(self, guarded: Any) -> None:
        for peer in ("127.0.0.1", "::1"):
            response = get(guarded, peer)
            assert response.status_code == 200, peer
            assert response.headers["content-type"].startswith("text/plain; version=")
            for name in (
                "pitpass_http_request_duration_seconds",
                "pitpass_oauth_grants_total",
                "pitpass_oauth_refresh_token_reuse_total",
                "pitpass_oauth_authorization_code_replays_total",
                "pitpass_rate_limit_refusals_total",
                "pitpass_argon2_waiting",
                "pitpass_argon2_in_use",
                "pitpass_storage_connection_wait_seconds",
                "pitpass_storage_errors_total",
            ):
                assert f"# TYPE {name} " in response.text, name

    def test_anyone_else_finds_nothing(self, guarded: Any) -> None:
        refused = get(guarded, OUTSIDER)
        assert refused.status_code == 404
        nothing = get(guarded, OUTSIDER, "/metricz")
        assert (refused.headers["content-type"], refused.text) == (
            nothing.headers["content-type"],
            nothing.text,
        ), "the same page as for a path that does not exist"
        assert get(guarded, OUTSIDER, Authorization="Basic bWV0cmljczp4").status_code == 404

    def test_an_outsider_claiming_loopback_in_a_header_is_refused(self, guarded: Any) -> None:
        claim = {"X-Forwarded-For": "127.0.0.1"}
        assert get(guarded, OUTSIDER, **claim).status_code == 404
        # Even where every peer is trusted, so that uvicorn takes the claim as the client.
        everyone_trusted = ProxyHeadersMiddleware(guarded.app, trusted_hosts="*")
        assert get(everyone_trusted, OUTSIDER, **claim).status_code == 404

    def test_a_request_relayed_by_a_proxy_on_loopback_is_not_local(self, guarded: Any) -> None:
        # nginx on the same machine: the TCP peer is 127.0.0.1, the client is elsewhere.
        relayed = {
            "X-Forwarded-For": OUTSIDER,
            "X-Real-IP": OUTSIDER,
            "Forwarded": f"for={OUTSIDER}",
        }
        for header, client in relayed.items():
            assert get(guarded, "127.0.0.1", **{header: client}).status_code == 404, header
        # ...and when the outsider's forged "127.0.0.1" is all the proxy passes on, which
        # uvicorn (trusting 127.0.0.1) takes as the client address.
        forged = get(guarded, "127.0.0.1", **{"X-Forwarded-For": "127.0.0.1"})
        assert forged.status_code == 404

    def test_the_token_opens_it_from_anywhere_and_a_wrong_one_says_so(self, guarded: Any) -> None:
        right = get(guarded, OUTSIDER, Authorization=f"Bearer {METRICS_TOKEN}")
        assert right.status_code == 200
        assert "pitpass_oauth_grants_total" in right.text
        relayed = get(
            guarded,
            "127.0.0.1",
            Authorization=f"bearer {METRICS_TOKEN}",
            **{"X-Forwarded-For": OUTSIDER},
        )
        assert relayed.status_code == 200
        for wrong in (METRICS_TOKEN[:-1], METRICS_TOKEN + "x", "x"):
            answer = get(guarded, OUTSIDER, Authorization=f"Bearer {wrong}")
            assert answer.status_code == 403
            assert "pitpass_" not in answer.text

    def test_without_a_token_set_no_bearer_opens_it(
        self, site_factory: Any, sqlite_backend: Backend
    ) -> None:
        open_site = ProxyHeadersMiddleware(site_factory(sqlite_backend).app, "127.0.0.1")
        assert get(open_site, OUTSIDER, Authorization="Bearer ").status_code == 404
        assert get(open_site, OUTSIDER, Authorization=f"Bearer {METRICS_TOKEN}").status_code == 403
        assert get(open_site, "127.0.0.1").status_code == 200


def test_a_short_metrics_token_is_refused(tmp_path: Path) -> None:
    from pitpass.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PITPASS_METRICS_TOKEN: must be at least 32"):
        load_settings(metrics_token="short", data_dir=tmp_path)


def test_requests_are_labelled_by_route_template_and_bounded(sqlite_site: Site) -> None:
    before = local_scrape()
    browser = sqlite_site.browser()
    browser.get("/api/v1/requests/12345")
    browser.get("/api/v1/requests/67890")
    browser.get("/static/../nowhere-123")
    browser.get("/static/no-such-file-123.css")
    browser.request("BREW", "/healthz")
    browser.post("/oauth2/token", data={"grant_type": "refresh_token"})
    after = local_scrape()

    def added(method: str, route: str, status: int) -> float:
        name = "pitpass_http_request_duration_seconds_count"
        labels = {"method": method, "route": route, "status": str(status)}
        return value(after, name, **labels) - value(before, name, **labels)

    assert added("GET", "/api/v1/requests/{request_id}", 401) == 2
    assert added("GET", "/static", 404) == 1
    assert added("GET", "unmatched", 404) == 1
    assert added("OTHER", "/healthz", 405) == 1
    assert added("POST", "/oauth2/token", 400) == 1
    routes = {dict(labels).get("route") for (_name, labels) in after}
    assert not {route for route in routes if route and ("123" in route or "678" in route)}


def test_grant_outcomes_are_a_closed_set() -> None:
    before = local_scrape()
    metrics.count_grant("refresh_token", "not an error of the table")
    metrics.count_grant("a grant nobody knows", "invalid_request")
    metrics.count_grant(None, "invalid_request")
    after = local_scrape()
    name = "pitpass_oauth_grants_total"

    def added(**labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert added(grant_type="refresh_token", outcome="server_error") == 1
    assert added(grant_type="unknown", outcome="invalid_request") == 2
    assert len([key for key in after if key[0] == name]) == len(
        [key for key in before if key[0] == name]
    )


def test_a_sqlite_error_is_counted_by_class_and_answered_503(sqlite_site: Site) -> None:
    client_id, secret, member_id = here.issue(sqlite_site)
    browser = sqlite_site.browser()
    code = here.mint_code(sqlite_site, client_id, member_id)
    tokens = here.redeem(browser, client_id, secret, code).json()
    database = sqlite_site.context.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE refresh_tokens RENAME TO gone")
    before = local_scrape()
    failed = here.refresh(browser, client_id, secret, tokens["refresh_token"])
    after = local_scrape()
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    labels = {"engine": "sqlite", "kind": "OperationalError"}
    errors = "pitpass_storage_errors_total"
    assert value(after, errors, **labels) - value(before, errors, **labels) == 1
    grants = "pitpass_oauth_grants_total"
    outcome = {"grant_type": "refresh_token", "outcome": "temporarily_unavailable"}
    assert value(after, grants, **outcome) - value(before, grants, **outcome) == 1


def test_an_oauth_error_while_a_connection_is_held_is_no_storage_error() -> None:
    before = local_scrape()
    with pytest.raises(OAuthError), metrics.SQLITE_ERRORS:
        raise OAuthError("invalid_grant", "unknown refresh token")
    with pytest.raises(ConnectionResetError), metrics.POSTGRESQL_ERRORS:
        raise ConnectionResetError
    after = local_scrape()
    errors = [key for key in after if key[0] == "pitpass_storage_errors_total"]
    added = {
        dict(key[1])["kind"]: after[key] - before.get(key, 0.0)
        for key in errors
        if after[key] != before.get(key, 0.0)
    }
    assert added == {"ConnectionResetError": 1}


@pytest.mark.services
def test_postgresql_waits_are_observed_per_borrow_and_refused_connects_counted() -> None:
    with postgres_database() as dsn:

        async def work() -> int:
            lender = ConnectionLender(dsn, 1, connect_timeout=5, server_settings={})
            try:

                async def one() -> None:
                    async with lender.connection() as connection:
                        await connection.execute("SELECT pg_sleep(0.01)")

                await asyncio.gather(*(one() for _ in range(5)))  # four of them queue
                return 5
            finally:
                await lender.close()

        before = local_scrape()
        borrows = asyncio.run(work())
        after = local_scrape()
    wait = "pitpass_storage_connection_wait_seconds"
    labels = {"engine": "postgresql"}
    assert value(after, f"{wait}_count", **labels) - value(before, f"{wait}_count", **labels) == (
        borrows
    )
    # The four that queued waited at least for the sleep of the one before them.
    waited = value(after, f"{wait}_sum", **labels) - value(before, f"{wait}_sum", **labels)
    assert waited >= 4 * 0.01

    refused_dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/test"

    async def refused() -> None:
        lender = ConnectionLender(refused_dsn, 1, connect_timeout=5, server_settings={})
        async with lender.connection():
            pass

    before = local_scrape()
    with pytest.raises(OSError):
        asyncio.run(refused())
    after = local_scrape()
    errors = "pitpass_storage_errors_total"
    kind = {"engine": "postgresql", "kind": "ConnectionRefusedError"}
    assert value(after, errors, **kind) - value(before, errors, **kind) == 1


def test_argon2_gauges_count_holders_and_waiters() -> None:
    slots = metrics.CountedSlots(threading.BoundedSemaphore(1))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with slots:
            holding.set()
            release.wait()

    def gauges() -> tuple[float, float]:
        samples = local_scrape()
        return value(samples, "pitpass_argon2_waiting"), value(samples, "pitpass_argon2_in_use")

    waiting_before, in_use_before = gauges()
    first = threading.Thread(target=hold)
    first.start()
    assert holding.wait(10)
    holding.clear()
    second = threading.Thread(target=hold)
    second.start()
    for _ in range(1000):  # until the second one queues, for at most about ten seconds
        if gauges() == (waiting_before + 1, in_use_before + 1):
            break
        release.wait(0.01)
    assert gauges() == (waiting_before + 1, in_use_before + 1)
    release.set()
    first.join(10)
    second.join(10)
    assert gauges() == (waiting_before, in_use_before)


def test_a_dead_workers_gauges_are_dropped_and_its_counts_kept(tmp_path: Path) -> None:
    """Multiprocess mode in a child process that exits without a word (as after kill -9)."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    child = (
        "from pitpass import metrics\n"
        "metrics.ARGON2_IN_USE.inc()\n"
        "metrics.count_refresh_token_reuse()\n"
        "import os; os._exit(0)\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    ran = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    (gauge,) = directory.glob("gauge_livesum_*.db")
    pid = int(gauge.stem.rsplit("_", 1)[1])
    assert metrics.forget_dead_workers(str(directory)) == [pid]
    assert not gauge.exists()
    assert (directory / f"counter_{pid}.db").exists()
    assert metrics.forget_dead_workers(str(directory)) == []


def test_serve_prepares_an_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "restored after the test")
    stale = tmp_path / "metrics" / "counter_99999.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    directory = metrics.prepare_multiprocess_dir(tmp_path)
    assert directory == (tmp_path / "metrics").resolve()
    assert list(directory.iterdir()) == []
    assert os.environ[metrics.MULTIPROC_ENV] == str(directory)


def test_every_limiter_counts_its_refusals(site_factory: Any, sqlite_backend: Backend) -> None:
    site = site_factory(
        sqlite_backend,
        client_auth_failures_per_client="2/minute",
        signin_failures_per_account_ip="2/15 minutes",
    )
    client_id, _secret, _member_id = here.issue(site)
    browser = site.browser()
    before = local_scrape()
    # Client authentication: the failure that reaches the limit, and the one after it.
    answers = [here.refresh(browser, client_id, "wrong", "x") for _ in range(3)]
    assert ["Retry-After" in answer.headers for answer in answers] == [False, True, True]
    # Web sign-in: two wrong passwords, then the third attempt waits.
    tries = [site.start_sign_in(browser, "ana@example.com", "wrong password here") for _ in "123"]
    assert [answer.status_code for answer in tries] == [400, 400, 429]
    after = local_scrape()
    name = "pitpass_rate_limit_refusals_total"

    def added(limiter: str) -> float:
        return value(after, name, limiter=limiter) - value(before, name, limiter=limiter)

    assert (added("client-auth"), added("signin-account-ip"), added("signin-ip")) == (2, 1, 0)
