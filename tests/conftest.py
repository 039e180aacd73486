from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from pitpass.app import create_app
from pitpass.config import Settings, load_settings
from pitpass.db.models import Member
from pitpass.services import members
from pitpass.services.context import AppContext
from tests.e2e.oauth_world import World, running_world
from tests.support import (
    TEST_SECRET_KEY,
    Backend,
    Mailbox,
    migrated_schema,
    postgres_database,
    require_redis,
    smtp_server,
)

# The suite hashes and verifies thousands of passwords. In the test process they use
# argon2id at its smallest cost: the same algorithm and code path (each hash carries its
# own parameters, so the server processes the browser tests start verify these cheaply
# too), at a fraction of the time. Production keeps RFC 9106's defaults
# (services/members.py); bench/ measures those.
members._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
GOOD_PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Storage- and limit-sensitive tests run on both deployment shapes (PRODUCT.md §6)."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite:///{tmp_path / 'pitpass.db'}", None)
        return
    redis_url = require_redis()
    with postgres_database(migrated=True) as url:
        yield Backend("postgresql", url, redis_url)


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite:///{tmp_path / 'pitpass.db'}", None)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


def make_settings(backend: Backend, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": backend.database_url,
        "redis_url": backend.redis_url,
        "redis_key_prefix": backend.redis_key_prefix,
        "secret_key": TEST_SECRET_KEY,
        "data_dir": tmp_path / "var",
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass
class Site:
    """A Pitpass app in-process, with a real SMTP server catching its mail."""

    app: FastAPI
    context: AppContext
    mailbox: Mailbox

    def browser(self) -> TestClient:
        """A new browser: its own cookie jar, same app."""
        return TestClient(self.app, follow_redirects=False)

    def add_member(
        self, email: str, password: str = GOOD_PASSWORD, *, staff: bool = False, **more: Any
    ) -> Member:
        with self.context.session() as db:
            return members.create_member(
                db,
                members.NewMember(
                    email=email,
                    display_name=more.pop("name", "Test Driver"),
                    password=password,
                    is_staff=staff,
                    **more,
                ),
                actor_label="test",
            )

    @staticmethod
    def csrf_of(page: Response) -> str:
        match = CSRF_FIELD.search(page.text)
        assert match, f"no CSRF field on {page.url}"
        return match.group(1)

    def submit(self, browser: TestClient, page_path: str, action: str, **fields: str) -> Response:
        """Open a page, then post its form with the page's CSRF token, as a browser does."""
        page = browser.get(page_path)
        return browser.post(action, data={"csrf_token": self.csrf_of(page), **fields})

    def start_sign_in(
        self, browser: TestClient, email: str, password: str = GOOD_PASSWORD, **more: str
    ) -> Response:
        page_path = "/signin?verify=1" if more.get("verify") else "/signin"
        return self.submit(browser, page_path, "/signin", email=email, password=password, **more)

    def sign_in(
        self, browser: TestClient, email: str, password: str = GOOD_PASSWORD, remember: bool = False
    ) -> Response:
        sent_before = self.mailbox.count_for(email)
        started = self.start_sign_in(browser, email, password)
        assert started.status_code == 303, started.text
        assert started.headers["location"] == "/signin/code"
        code = self.mailbox.code_for(email, sent_before + 1)
        fields = {"code": code, **({"remember": "1"} if remember else {})}
        done = self.submit(browser, "/signin/code", "/signin/code", **fields)
        assert done.status_code == 303, done.text
        return done


@pytest.fixture
def site_factory(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> Iterator[Any]:
    clients: list[TestClient] = []

    def build(backend: Backend, **overrides: Any) -> Site:
        box, port = mailbox
        overrides = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none"} | overrides
        settings = make_settings(backend, tmp_path, **overrides)
        migrated_schema(settings.database_url)
        app = create_app(settings)
        lifespan = TestClient(app)
        lifespan.__enter__()
        clients.append(lifespan)
        return Site(app, app.state.context, box)

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def site(site_factory: Any, backend: Backend) -> Site:
    built: Site = site_factory(backend)
    return built


@pytest.fixture
def sqlite_site(site_factory: Any, sqlite_backend: Backend) -> Site:
    built: Site = site_factory(sqlite_backend)
    return built


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One live protocol server per test process (tests/oauth/, tests/e2e/): every test
    makes its own members and clients, so they share it safely."""
    env = {"PITPASS_PASSWORD_LIMITED_RATE": "3/hour"}
    with running_world(tmp_path_factory.mktemp("protocol"), **env) as running:
        yield running
